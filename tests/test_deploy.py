"""The shipped deploy files work with the real programs they configure."""
import re
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt

from linewatch import wire
from linewatch.collector import registry as registry_mod
from linewatch.collector.config import BrokerConfig
from linewatch.collector.ingest import Ingestor
from linewatch.collector.mqtt import Subscriber
from linewatch.collector.record import EventFilter, open_record

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
    store = open_record(tmp_path / "record.sqlite3")
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
        wait_for(lambda: len(store.events(EventFilter(messages=True))) >= n, 60,
                 f"{n} queued messages to reach the record")
        sub.stop()
        assert sorted(r.seq for r in store.events(EventFilter(messages=True))) == list(range(1, n + 1))
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


def _conf_value(name: str) -> str:
    m = re.search(rf"^{name} (\S+)$", SHIPPED, re.M)
    assert m, f"{name} is not set in deploy/server/mosquitto.conf"
    return m.group(1)


def _longest_topic() -> str:
    """The longest topic the contract accepts: a non-commune site code, a 48-character agent id."""
    topic = wire.agent_topic("52", "52-" + "a" * 31, "a" * 48, max(wire.AGENT_KINDS, key=len))
    assert wire.parse_topic(topic) and len(topic) == 108
    return topic


def _publish_packet_size(topic: str, payload_len: int) -> int:
    """An MQTT 3.1.1 QoS 1 PUBLISH as Mosquitto 2.0 measures it for max_packet_size: the fixed
    header byte + the remaining length (topic length, topic, packet id, payload). The 1-4 bytes
    that encode the remaining length are not counted (checked below against the real broker)."""
    return 1 + 2 + len(topic.encode()) + 2 + payload_len


def test_the_broker_accepts_exactly_what_the_collector_can_take_and_no_more():
    limit = int(_conf_value("max_packet_size"))
    assert limit <= wire.MAX_PAYLOAD_BYTES + 1024, "the broker would queue messages the collector must refuse"
    assert limit >= _publish_packet_size(_longest_topic(), wire.MAX_PAYLOAD_BYTES), \
        "the broker would refuse a message the collector accepts"
    assert not re.search(r"^retain_available +false", SHIPPED, re.M), "status (and the last will) is retained"


def test_the_shipped_broker_refuses_a_publish_larger_than_the_collector_accepts(tmp_path):
    broker = shipped_broker(tmp_path / "broker")
    limit = int(_conf_value("max_packet_size"))
    topic = _longest_topic()
    got: list[tuple[str, int]] = []
    clients: list[mqtt.Client] = []
    dropped: set[str] = set()

    def client(client_id: str) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        c.on_disconnect = lambda *_: dropped.add(client_id)
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        clients.append(c)
        return c

    try:
        sub = client("sub")
        sub.on_message = lambda _c, _u, m: got.append((m.topic, len(m.payload)))
        sub.subscribe("lw/v1/#", qos=1)
        time.sleep(0.3)
        # the largest payload the collector accepts, on the longest topic: delivered
        client("big").publish(topic, b"x" * wire.MAX_PAYLOAD_BYTES, qos=1)
        wait_for(lambda: (topic, wire.MAX_PAYLOAD_BYTES) in got, 10, "the largest valid message")
        # exactly the limit, as Mosquitto counts it, still passes (so the count above is Mosquitto's)
        at_limit = limit - _publish_packet_size(topic, 0)
        client("at-limit").publish(topic, b"x" * at_limit, qos=1)
        wait_for(lambda: (topic, at_limit) in got, 10, "a message of exactly max_packet_size")
        # one byte over the broker's limit: the sender is disconnected, nothing is delivered or retained
        over = limit + 1 - _publish_packet_size(topic, 0)
        client("too-big").publish(topic, b"x" * over, qos=1, retain=True)
        wait_for(lambda: "too-big" in dropped, 10, "the broker to disconnect the sender of an oversized packet")
        client("marker").publish(wire.agent_topic("52", "21583", "ag-1", "status"), b"m", qos=1)
        wait_for(lambda: any(n == 1 for _, n in got), 10, "the marker sent after the oversized message")
        assert (topic, over) not in got and "sub" not in dropped
    finally:
        for c in clients:
            c.disconnect()
            c.loop_stop()
        broker.stop()


def test_the_server_deploy_sets_up_victoriametrics_for_linewatch_and_grafana_provisioning():
    from linewatch.collector.notify.config import HttpConfig

    args = (ROOT / "deploy/server/victoria-metrics.default").read_text()
    assert "-dedup.minScrapeInterval=1ms" in args and "-retentionPeriod=" in args and "127.0.0.1:8428" in args
    scrape = (ROOT / "deploy/server/scrape.yml").read_text()
    assert f'"127.0.0.1:{HttpConfig().port}"' in scrape, "VictoriaMetrics scrapes the collector's /metrics"
    install = (ROOT / "deploy/server/install.sh").read_text()
    for path in ("deploy/grafana/provisioning/datasources/linewatch.yaml",
                 "deploy/grafana/provisioning/dashboards/linewatch.yaml", "deploy/server/victoria-metrics.default",
                 "deploy/server/scrape.yml"):
        assert path in install and (ROOT / path).exists(), path
    provider = (ROOT / "deploy/grafana/provisioning/dashboards/linewatch.yaml").read_text()
    assert "/var/lib/grafana/dashboards/linewatch" in provider and "/var/lib/grafana/dashboards/linewatch" in install
    datasource = (ROOT / "deploy/grafana/provisioning/datasources/linewatch.yaml").read_text()
    assert "http://127.0.0.1:8428" in datasource and "linewatch-vm" in datasource
