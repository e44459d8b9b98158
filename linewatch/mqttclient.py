"""One way to make a paho 2.x client from an [mqtt] config, for the agent and the collector:
stable client id, persistent session, credentials, TLS that checks the broker's certificate
and name, bounded reconnect back-off.

MQTT 5 (the collector's default, and the agent's) keeps the session like MQTT 3.1.1's
clean_session=False (clean start off, session expiry "never" unless the caller gives one), and
lets a subscriber see the retain flag of a message delivered live (``retainAsPublished``): under
3.1.1 the broker clears it, so a retained measurement published while the collector is connected
could not be told apart. For a publisher MQTT 5 also says when the broker *refuses* a message:
the PUBACK carries a reason code (Mosquitto: 135 "Not authorized" for a publish its ACL denies),
where MQTT 3.1.1 acknowledges it and the broker drops it in silence."""
from __future__ import annotations

import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from .config import MqttConnection

#: MQTT 5 session expiry "never" (the session lives like a 3.1.1 persistent session).
SESSION_NEVER_EXPIRES = 0xFFFFFFFF


class Client(mqtt.Client):
    """paho's client, whose network thread (loop_start runs loop_forever) may sleep up to
    ``idle_wait_s`` in select() when nothing happens, instead of paho's 1 s. Nothing waits on
    that tick: a publish from another thread, a packet and a closed socket all end the wait at
    once; only the keepalive PINGREQ comes up to ``idle_wait_s`` late, so keep it a fraction of
    the keepalive (the broker allows 1.5 x keepalive)."""

    idle_wait_s = 1.0

    def loop_forever(self, timeout: float | None = None, retry_first_connection: bool = False) -> mqtt.MQTTErrorCode:
        return super().loop_forever(self.idle_wait_s if timeout is None else timeout, retry_first_connection)


def new_client(conn: MqttConnection, client_id: str, *, manual_ack: bool = False,
               max_reconnect_delay_s: int = 60, mqtt5: bool = False, idle_wait_s: float = 1.0) -> mqtt.Client:
    if mqtt5:
        c = Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                   manual_ack=manual_ack)
    else:
        c = Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                   manual_ack=manual_ack)
    c.idle_wait_s = min(idle_wait_s, conn.keepalive_s / 4)
    if conn.username:
        c.username_pw_set(conn.username, conn.password)
    if conn.tls:
        c.tls_set(ca_certs=conn.ca_file, cert_reqs=ssl.CERT_REQUIRED)
    c.reconnect_delay_set(1, max_reconnect_delay_s)
    return c


def connect_async(c: mqtt.Client, conn: MqttConnection, *, session_expiry_s: int = SESSION_NEVER_EXPIRES) -> None:
    """Start connecting in paho's own thread (it reconnects by itself, with back-off).
    Under MQTT 5 the session is kept ``session_expiry_s`` after a disconnect."""
    if c.protocol == mqtt.MQTTv5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = min(max(0, int(session_expiry_s)), SESSION_NEVER_EXPIRES)
        c.connect_async(conn.host, conn.port, keepalive=conn.keepalive_s, clean_start=False, properties=props)
    else:
        c.connect_async(conn.host, conn.port, keepalive=conn.keepalive_s)
    c.loop_start()


def retire(c: mqtt.Client) -> None:
    """Stop a client for good (it is being replaced): no more callbacks, no reconnect."""
    for name in ("on_connect", "on_connect_fail", "on_disconnect", "on_publish", "on_message", "on_subscribe",
                 "on_socket_open"):
        setattr(c, name, None)
    c.disconnect()
    c.loop_stop()


def subscribe(c: mqtt.Client, topic_filter: str) -> None:
    """QoS 1; under MQTT 5 the retain flag of every message is kept as published."""
    if c.protocol == mqtt.MQTTv5:
        c.subscribe(topic_filter, options=SubscribeOptions(qos=1, retainAsPublished=True))
    else:
        c.subscribe(topic_filter, qos=1)
