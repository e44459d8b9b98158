"""Sending commands to agents over MQTT (their command topic; only the collector may write
there). The running collector publishes the rules' retests on its own connection; the
`test` command publishes once on a short-lived connection of its own."""
from __future__ import annotations

import os
import threading

import paho.mqtt.client as mqtt

from linewatch.mqttclient import new_client

from .config import BrokerConfig


def publish_once(cfg: BrokerConfig, topic: str, payload: bytes, timeout_s: float = 15) -> str | None:
    """Publish at QoS 1 and wait for the broker's PUBACK. None on success, else why not."""
    c = new_client(cfg, f"{cfg.client_id}-cmd-{os.getpid()}", mqtt5=cfg.mqtt_version == 5)
    done = threading.Event()
    why: list[str] = []

    def on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            why.append(f"the broker refused the collector's login ({reason_code}): check [mqtt] username/password")
            done.set()
            return
        client.publish(topic, payload, qos=1)

    c.on_connect = on_connect
    c.on_publish = lambda *a: done.set()
    try:
        c.connect(cfg.host, cfg.port, keepalive=30)
    except OSError as e:
        return f"cannot reach the broker at {cfg.host}:{cfg.port} ({e.strerror or e}): is Mosquitto running?"
    c.loop_start()
    try:
        if not done.wait(timeout_s):
            return f"the broker at {cfg.host}:{cfg.port} did not acknowledge the command within {timeout_s:g} s"
        return why[0] if why else None
    finally:
        c.disconnect()
        c.loop_stop()


def publisher(client: mqtt.Client, timeout_s: float = 5.0):
    """A publish function for the rules engine over the collector's own connection: True only
    once the broker acknowledged the command (PUBACK). The engine marks a command sent only
    then, so a collector that dies with the command still in paho's memory sends it again
    after its restart (the agent runs one id once)."""
    def publish(topic: str, payload: bytes) -> bool:
        if not client.is_connected():
            return False
        info = client.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            return False
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()
    return publish
