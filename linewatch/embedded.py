"""An MQTT broker inside the linewatch process (amqtt), so `linewatch up` needs no server.

Production uses Mosquitto (deploy/server/); this is for a laptop, a demo or a single
office. The broker runs its asyncio loop in a thread of its own.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import Future

from .errors import BrokerError  # noqa: F401


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883):
        self.host, self.port = host, port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._broker = None
        self._thread: threading.Thread | None = None

    def start(self, timeout: float = 15) -> None:
        try:
            from amqtt.broker import Broker
        except ImportError:
            raise BrokerError("the embedded broker needs the 'embedded' extra: pip install 'linewatch[embedded]'") from None
        if not port_free(self.host, self.port):
            raise BrokerError(f"port {self.port} on {self.host} is already in use (another MQTT broker?): "
                              f"choose another with --port, or point linewatch at that broker")
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        cfg = {"listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
               "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}}}
        started: Future[None] = Future()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                self._broker = Broker(cfg, loop=loop)
                loop.run_until_complete(self._broker.start())
            except BaseException as e:  # noqa: BLE001 - reported to the starting thread
                started.set_exception(e)
                loop.close()
                return
            started.set_result(None)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="embedded-broker", daemon=True)
        self._thread.start()
        try:
            started.result(timeout)
        except Exception as e:
            raise BrokerError(f"the embedded MQTT broker did not start on {self.host}:{self.port}: {e}") from e

    def stop(self) -> None:
        if not self._loop or not self._broker:
            return
        fut = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
        try:
            fut.result(10)
        except Exception:  # noqa: BLE001 - shutting down anyway
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
