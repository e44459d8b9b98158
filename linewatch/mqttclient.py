"""One way to make a paho 2.x client from an [mqtt] config, for the agent and the collector:
stable client id, persistent session, credentials, TLS that checks the broker's certificate
and name, bounded reconnect back-off.

MQTT 5 (the collector's default) keeps the session like MQTT 3.1.1's clean_session=False
(session expiry "never"), and lets a subscriber see the retain flag of a message delivered
live (``retainAsPublished``): under 3.1.1 the broker clears it, so a retained measurement
published while the collector is connected could not be told apart."""
from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from .config import MqttConnection

#: MQTT 5 session expiry "never" (the session lives like a 3.1.1 persistent session).
SESSION_NEVER_EXPIRES = 0xFFFFFFFF


def new_client(conn: MqttConnection, client_id: str, *, manual_ack: bool = False,
               max_reconnect_delay_s: int = 60, mqtt5: bool = False) -> mqtt.Client:
    if mqtt5:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                        manual_ack=manual_ack)
    else:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                        manual_ack=manual_ack)
    if conn.username:
        c.username_pw_set(conn.username, conn.password)
    if conn.tls:
        c.tls_set(ca_certs=conn.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    c.reconnect_delay_set(1, max_reconnect_delay_s)
    return c


def connect_async(c: mqtt.Client, conn: MqttConnection) -> None:
    if c.protocol == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_NEVER_EXPIRES
        c.connect_async(conn.host, conn.port, keepalive=conn.keepalive_s, clean_start=False, properties=props)
    else:
        c.connect_async(conn.host, conn.port, keepalive=conn.keepalive_s)
    c.loop_start()


def subscribe(c: mqtt.Client, topic_filter: str) -> None:
    """QoS 1; under MQTT 5 the retain flag of every message is kept as published."""
    if c.protocol == mqtt.MQTTv5:
        c.subscribe(topic_filter, options=SubscribeOptions(qos=1, retainAsPublished=True))
    else:
        c.subscribe(topic_filter, qos=1)
