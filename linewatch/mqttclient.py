"""One way to make a paho 2.x client from an [mqtt] config, for the agent and the collector:
stable client id, persistent session, credentials, TLS that checks the broker's certificate
and name, bounded reconnect back-off."""
from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt

from .config import MqttConnection


def new_client(conn: MqttConnection, client_id: str, *, manual_ack: bool = False,
               max_reconnect_delay_s: int = 60) -> mqtt.Client:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                    manual_ack=manual_ack)
    if conn.username:
        c.username_pw_set(conn.username, conn.password)
    if conn.tls:
        c.tls_set(ca_certs=conn.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    c.reconnect_delay_set(1, max_reconnect_delay_s)
    return c


def connect_async(c: mqtt.Client, conn: MqttConnection) -> None:
    c.connect_async(conn.host, conn.port, keepalive=conn.keepalive_s)
    c.loop_start()
