"""The shipped deploy files work with the real programs they configure."""
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from linewatch import wire
from linewatch.collector import registry as registry_mod
from linewatch.collector.config import BrokerConfig
from linewatch.collector.ingest import Ingestor
from linewatch.collector.mqtt import Subscriber
from linewatch.collector.store import Store

from conftest import REGISTRY_TOML, ROOT, free_port, start_mosquitto, wait_for, wait_port

SHIPPED = (ROOT / "deploy/server/mosquitto.conf").read_text()


def shipped_broker(tmp: Path, secure: bool = False, registry_text: str = REGISTRY_TOML, extra_conf: str = ""):
    """The shipped mosquitto.conf, moved to free ports and a private folder.

    Both listeners move to 127.0.0.1 on free ports (``b.port``: the collector's plaintext one,
    ``b.tls_port``: the agents' TLS one); the security files it names are generated into
    ``b.files`` (``linewatch-collector init-ca`` / ``acl`` code, for 127.0.0.1 and localhost).
    With ``secure=False`` (delivery tests with plain anonymous clients) the shipped
    logins/ACL lines are swapped for ``allow_anonymous true``; every other setting is the
    shipped one. ``secure=True`` runs the shipped file as it is, logins and ACL included
    (tests/test_security.py)."""
    import tomllib

    from linewatch.collector import security

    port, tls_port = free_port(), free_port()
    files = tmp / "broker-files"
    if not (files / security.SERVER_CERT).exists():  # a test may have made them with the CLI already
        security.init_ca(tmp / "ca", files, ["127.0.0.1", "localhost"], province="52")
    if not (files / security.ACL_FILE).exists():
        security.write_acl(registry_mod.parse(tomllib.loads(registry_text)), files, "linewatch-collector")
    if not (files / security.PASSWORD_FILE).exists():
        security.PasswordFile(files / security.PASSWORD_FILE).save()
    conf = re.sub(r"^listener 1883 127\.0\.0\.1$", f"listener {port} 127.0.0.1", SHIPPED, flags=re.M)
    conf = re.sub(r"^listener 8883$", f"listener {tls_port} 127.0.0.1", conf, flags=re.M)
    conf = re.sub(r"^persistence_location .*$", f"persistence_location {tmp}/", conf, flags=re.M)
    conf = conf.replace("/etc/mosquitto/linewatch/", f"{files}/")
    if not secure:
        conf = re.sub(r"^(password_file|acl_file|use_username_as_clientid) .*$", "", conf, flags=re.M)
        conf = re.sub(r"^allow_anonymous false$", "allow_anonymous true", conf, flags=re.M)
    assert f"listener {port} 127.0.0.1" in conf and f"listener {tls_port} 127.0.0.1" in conf
    assert "/etc/" not in conf.replace("/etc/mosquitto/conf.d", "")
    b = start_mosquitto(tmp, port=port)
    b.conf.write_text(conf + "\nuser root\nlog_dest stdout\n" + extra_conf)
    b.restart()
    wait_port("127.0.0.1", tls_port)
    b.tls_port = tls_port
    b.files = files
    return b


def test_the_shipped_broker_config_keeps_far_more_than_1000_messages_for_a_stopped_collector(tmp_path):
    """Mosquitto's default max_queued_messages (1000) would silently drop the rest."""
    broker = shipped_broker(tmp_path / "broker")
    store = Store(tmp_path / "record.sqlite3")
    cfg = BrokerConfig(port=broker.port, client_id="linewatch-collector")
    try:
        sub = Subscriber(cfg, Ingestor(store, registry_mod.parse(__import__("tomllib").loads(REGISTRY_TOML))))
        sub.start()
        wait_for(sub.connected.is_set, 10, "collector connected")
        sub.stop()  # the session (subscription) stays at the broker
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ag-21583")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        n = 3000
        infos = []
        for seq in range(1, n + 1):
            m = wire.build_message(kind="latency", agent_id="ag-21583", province="52", site="21583", line="fiber",
                                   seq=seq, measured_at=wire.utc_now() - timedelta(seconds=1),
                                   data={"method": "tcp-connect", "target": "h:443", "sent": 1, "received": 1,
                                         "loss_pct": 0})
            infos.append(pub.publish(m.topic, m.to_json(), qos=1))
        for i in infos:
            i.wait_for_publish(10)
        pub.disconnect()
        pub.loop_stop()
        broker.restart()  # and the queue survives a broker restart (persistence)
        sub = Subscriber(cfg, sub.ingestor)
        sub.start()
        wait_for(lambda: len(store.measurements()) >= n, 60, f"{n} queued messages to reach the record")
        sub.stop()
        assert sorted(r["seq"] for r in store.measurements()) == list(range(1, n + 1))
    finally:
        store.close()
        broker.stop()


def test_install_scripts_and_units_are_well_formed():
    for script in ("deploy/server/install.sh", "deploy/agent/install.sh", "dev", ".ci/run"):
        assert subprocess.run(["bash", "-n", str(ROOT / script)]).returncode == 0, script
    for unit in ("deploy/server/linewatch-collector.service", "deploy/agent/linewatch-agent.service"):
        text = (ROOT / unit).read_text()
        exec_start = re.search(r"^ExecStart=(\S+) -c (\S+) run$", text, re.M)
        assert exec_start, unit
        assert "RestartPreventExitStatus=2 3" in text  # bad config / bad credentials: no restart loop
