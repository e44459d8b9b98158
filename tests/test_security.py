"""Security: TLS, per-agent logins and the registry-generated ACL, against a real mosquitto
running the shipped deploy/server/mosquitto.conf (tests/test_deploy.py moves it to free ports).

Unit tests for the pure parts (ACL text, password hash, enrol refusals) come first; the broker
tests share one broker per module to stay fast.
"""
from __future__ import annotations

import contextlib
import io
import signal
import socket
import ssl
import subprocess
import textwrap
import time
import tomllib
from datetime import timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from linewatch import wire
from linewatch.collector import cli as collector_cli
from linewatch.collector import config as collector_config
from linewatch.collector import registry as registry_mod
from linewatch.collector import enrol as enrolment, security
from linewatch.collector.ingest import Ingestor
from linewatch.collector.mqtt import Subscriber
from linewatch.collector.record import EventFilter, open_record
from linewatch.config import ConfigError

from conftest import MOSQUITTO, REGISTRY_TOML, spawn, wait_for
from test_deploy import shipped_broker

REGISTRY = registry_mod.parse(tomllib.loads(REGISTRY_TOML))


# --------------------------------------------------------------------------- ACL (pure)
def parse_acl(text: str) -> dict[str, list[tuple[str, str]]]:
    users: dict[str, list[tuple[str, str]]] = {}
    user = None
    for ln in text.splitlines():
        if ln.startswith("user "):
            user = ln.split(" ", 1)[1]
            users.setdefault(user, [])
        elif ln.startswith("topic "):
            _, access, topic = ln.split(" ", 2)
            assert user is not None, "no topic line may apply to anonymous clients"
            users[user].append((access, topic))
    return users


def may(acl, user: str, access: str, topic: str) -> bool:
    return any(a in (access, "readwrite") and mqtt.topic_matches_sub(t, topic) for a, t in acl.get(user, []))


def test_acl_lets_each_agent_write_only_its_own_site_and_agent_topics_and_read_only_its_command_topic():
    acl = parse_acl(security.acl_text(REGISTRY, "linewatch-collector"))
    assert set(acl) == {"linewatch-collector", "ag-21583", "ag-21584"}
    own_line = wire.line_topic("52", "21583", "fiber", "latency")
    own_status = wire.agent_topic("52", "21583", "ag-21583", "status")  # also its last will
    assert may(acl, "ag-21583", "write", own_line)
    for kind in wire.AGENT_KINDS:
        assert may(acl, "ag-21583", "write", wire.agent_topic("52", "21583", "ag-21583", kind))
    assert may(acl, "ag-21583", "write", own_status)
    assert may(acl, "ag-21583", "read", wire.command_topic("52", "21583", "ag-21583"))
    # another site, another province, another agent of any site, somebody else's command topic
    assert not may(acl, "ag-21583", "write", wire.line_topic("52", "21584", "fiber", "latency"))
    assert not may(acl, "ag-21583", "write", wire.line_topic("53", "21583", "fiber", "latency"))
    assert not may(acl, "ag-21583", "write", wire.agent_topic("52", "21584", "ag-21584", "heartbeat"))
    assert not may(acl, "ag-21583", "write", wire.agent_topic("52", "21583", "ag-21584", "status"))
    assert not may(acl, "ag-21583", "read", wire.command_topic("52", "21584", "ag-21584"))
    assert not may(acl, "ag-21583", "read", own_line), "an agent reads nothing but its command topic"
    assert not may(acl, "ag-21583", "write", "lw/v1/52/21583/line/fiber/latency/extra")
    assert not may(acl, "ag-21583", "write", wire.command_topic("52", "21583", "ag-21583")), \
        "only the collector may command an agent, not the agent itself"
    # the collector reads everything, commands agents, and may clear a retained message anywhere
    assert may(acl, "linewatch-collector", "read", own_line)
    assert may(acl, "linewatch-collector", "write", wire.command_topic("52", "21584", "ag-21584"))
    assert may(acl, "linewatch-collector", "write", own_line)


def test_a_site_without_listed_agents_gets_no_publisher_and_the_acl_follows_registry_edits():
    text = REGISTRY_TOML.replace('agents = ["ag-21584"]', 'agents = ["ag-21584", "ag-21584-pi"]')
    text = text.replace('agents = ["ag-21583"]\n', "")
    acl = parse_acl(security.acl_text(registry_mod.parse(tomllib.loads(text)), None))
    assert set(acl) == {"ag-21584", "ag-21584-pi"}
    assert may(acl, "ag-21584-pi", "write", wire.line_topic("52", "21584", "fiber", "latency"))
    assert not any(may(acl, u, "write", wire.line_topic("52", "21583", "fiber", "latency")) for u in acl)


def test_password_hash_is_the_one_mosquitto_passwd_writes(tmp_path):
    """Same salt and iterations -> the same $7$ line as the Debian mosquitto_passwd tool."""
    if not (exe := __import__("shutil").which("mosquitto_passwd")):
        pytest.skip("mosquitto_passwd is not installed (Debian package mosquitto)")
    f = tmp_path / "pw"
    subprocess.run([exe, "-c", "-b", str(f), "ag-1", "s3cret pass"], check=True)
    theirs = f.read_text().strip().split(":", 1)[1]
    _, _, iterations, salt, _ = theirs.split("$")
    import base64

    assert security.hash_password("s3cret pass", base64.b64decode(salt), int(iterations)) == theirs
    assert security.check_password(theirs, "s3cret pass") and not security.check_password(theirs, "s3cret")
    mine = security.hash_password("x")
    assert mine.startswith("$7$101$") and mine != security.hash_password("x"), "a fresh salt every time"


def test_enrol_refuses_with_the_fix_instead_of_guessing(tmp_path):
    broker_dir = tmp_path / "broker"
    kw = dict(broker_host="linewatch.tinh.example", broker_dir=broker_dir, collector_user="linewatch-collector")
    with pytest.raises(ConfigError, match="init-ca"):
        enrolment.enrol(REGISTRY, site_code="21584", agent_id="ag-21584", out_dir=tmp_path / "o0", **kw)
    security.init_ca(tmp_path / "ca", broker_dir, ["linewatch.tinh.example"])
    with pytest.raises(ConfigError) as e:
        enrolment.enrol(REGISTRY, site_code="21583", agent_id="ag-21583-02", out_dir=tmp_path / "o1", **kw)
    assert 'agents = ["ag-21583", "ag-21583-02"]' in str(e.value), "says exactly which line to write"
    with pytest.raises(ConfigError, match="listed under site 21584"):
        enrolment.enrol(REGISTRY, site_code="21583", agent_id="ag-21584", out_dir=tmp_path / "o2", **kw)
    with pytest.raises(ConfigError, match="--bind fiber=.* --bind tslcd="):
        enrolment.enrol(REGISTRY, site_code="21583", agent_id="ag-21583", out_dir=tmp_path / "o3", **kw)
    with pytest.raises(ConfigError, match="not in the registry"):
        enrolment.enrol(REGISTRY, site_code="99999", agent_id="ag-9", out_dir=tmp_path / "o4", **kw)
    assert not (broker_dir / security.PASSWORD_FILE).exists(), "nothing written by a refused enrolment"
    res = enrolment.enrol(REGISTRY, site_code="21583", agent_id="ag-21583", out_dir=tmp_path / "o5",
                         bind=["fiber=192.168.1.10", "tslcd=eth1"], **kw)
    doc = tomllib.loads(res.agent_toml.read_text())
    assert doc["mqtt"] | {"password_file": None} == {
        "host": "linewatch.tinh.example", "port": 8883, "username": "ag-21583", "password_file": None,
        "tls": True, "ca_file": "/etc/linewatch/ca.crt", "keepalive_s": 30}
    assert [(ln["id"], ln.get("source_address"), ln.get("interface")) for ln in doc["line"]] == [
        ("fiber", "192.168.1.10", None), ("tslcd", None, "eth1")]
    assert doc["line"][1]["latency"]["targets"] == ["tcp:linewatch.tinh.example:8883"]
    password = res.password_file.read_text().strip()
    stored = dict(ln.split(":", 1) for ln in (broker_dir / security.PASSWORD_FILE).read_text().splitlines())
    assert security.check_password(stored["ag-21583"], password)
    assert res.password_file.stat().st_mode & 0o077 == 0, "the password is readable by its owner only"
    with pytest.raises(ConfigError, match="--replace"):
        enrolment.enrol(REGISTRY, site_code="21583", agent_id="ag-21583", out_dir=tmp_path / "o6",
                       bind=["fiber=192.168.1.10", "tslcd=eth1"], **kw)


def run_collector_cli(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    import sys

    return subprocess.run([sys.executable, "-m", "linewatch.collector.cli", "-c", "collector.toml", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("login_first", [True, False], ids=["login-set-first", "login-added-after"])
def test_init_ca_works_whether_or_not_the_admin_set_the_collector_login_first(tmp_path, login_first):
    """README "Security": the admin may write username/password_file into collector.toml
    before running init-ca; the password file does not exist yet then (init-ca makes it)."""
    (tmp_path / "registry.toml").write_text(REGISTRY_TOML)
    login = 'username = "linewatch-collector"\npassword_file = "collector.password"\n'
    cfg = textwrap.dedent("""\
        registry = "registry.toml"
        record = "record.sqlite3"
        [mqtt]
        port = 1
        {login}[security]
        ca_dir = "ca"
        broker_dir = "broker"
        """)
    (tmp_path / "collector.toml").write_text(cfg.format(login=login if login_first else ""))
    r = run_collector_cli(tmp_path, "init-ca", "--host", "x")
    assert r.returncode == 0, r.stderr
    password = (tmp_path / "collector.password").read_text().strip()
    users = dict(ln.split(":", 1) for ln in (tmp_path / "broker" / security.PASSWORD_FILE).read_text().splitlines())
    assert security.check_password(users["linewatch-collector"], password)
    assert ("Add to [mqtt]" in r.stdout) is not login_first, "asks for the login lines only when they are missing"
    (tmp_path / "collector.toml").write_text(cfg.format(login=login))
    # run again (e.g. a new broker name): the CA and the collector's password are kept
    assert run_collector_cli(tmp_path, "init-ca", "--host", "y").returncode == 0
    assert (tmp_path / "collector.password").read_text().strip() == password
    assert collector_config.load(tmp_path / "collector.toml").mqtt.password == password


def test_run_and_check_config_still_refuse_a_missing_password_file_with_exit_2(tmp_path):
    (tmp_path / "registry.toml").write_text(REGISTRY_TOML)
    (tmp_path / "collector.toml").write_text(textwrap.dedent("""\
        registry = "registry.toml"
        record = "record.sqlite3"
        [mqtt]
        port = 1
        username = "linewatch-collector"
        password_file = "collector.password"
        """))
    for cmd in ("run", "check-config"):
        r = run_collector_cli(tmp_path, cmd, timeout=20)
        assert r.returncode == 2, (cmd, r.stderr)
        assert "collector.password" in r.stderr and "init-ca" in r.stderr, r.stderr
    assert not (tmp_path / "record.sqlite3").exists(), "refused before opening the record"
    with pytest.raises(ConfigError, match="password_file"):
        collector_config.load(tmp_path / "collector.toml")


# --------------------------------------------------------------------------- the real broker
@pytest.fixture(scope="module")
def province(tmp_path_factory):
    """A province server: registry, collector.toml with [security], `init-ca` run through the
    CLI, the shipped mosquitto.conf running on free ports, agent ag-21584 enrolled, and the
    collector subscribed with its own login over the loopback listener."""
    if not MOSQUITTO:
        pytest.skip("mosquitto is not installed (./dev test installs it with apt-get)")
    tmp = tmp_path_factory.mktemp("province")
    (tmp / "registry.toml").write_text(REGISTRY_TOML)
    files = tmp / "broker" / "broker-files"

    def write_collector_toml(port: int, tls_port: int = 8883) -> Path:
        p = tmp / "collector.toml"
        p.write_text(textwrap.dedent(f"""\
            registry = "registry.toml"
            record = "record.sqlite3"
            [mqtt]
            host = "127.0.0.1"
            port = {port}
            username = "linewatch-collector"
            password_file = "collector.password"
            [security]
            ca_dir = "ca"
            broker_dir = "{files}"
            broker_host = "127.0.0.1"
            broker_port = {tls_port}
            """))
        return p

    # init-ca runs before the collector has a password, so the config names none yet
    cfg_path = write_collector_toml(1883)
    text = cfg_path.read_text().replace('username = "linewatch-collector"\npassword_file = "collector.password"\n', "")
    cfg_path.write_text(text)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert collector_cli.main(["-c", str(cfg_path), "init-ca", "--host", "127.0.0.1", "--host", "localhost"]) == 0
    assert "password_file = \"collector.password\"" in out.getvalue(), "tells the admin what to add"
    assert (tmp / "collector.password").exists() and (files / "server.crt").exists()

    # log_type all: the log shows denied publishes and every connection attempt. A log file,
    # not stdout: mosquitto's stdout into a file is block-buffered, its log file is flushed.
    log = tmp / "mosquitto-file.log"
    broker = shipped_broker(tmp / "broker", secure=True, extra_conf=f"log_type all\nlog_dest file {log}\n")
    broker.log = log
    cfg_path = write_collector_toml(broker.port, broker.tls_port)
    with contextlib.redirect_stdout(io.StringIO()):
        assert collector_cli.main(["-c", str(cfg_path), "enrol", "--site", "21584", "--agent-id", "ag-21584",
                                   "--out", str(tmp / "ag-21584"), "--install-dir", str(tmp / "ag-21584"),
                                   "--target", "fiber=127.0.0.1"]) == 0
    cfg = collector_config.load(cfg_path)
    store = open_record(cfg.record)
    sub = Subscriber(cfg.mqtt, Ingestor(store, registry_mod.load(cfg.registry_path)))
    sub.start()
    wait_for(sub.connected.is_set, 10, "the collector to log in on the loopback listener")
    ns = type("Province", (), {})()
    ns.tmp, ns.broker, ns.cfg_path, ns.store, ns.sub, ns.files = tmp, broker, cfg_path, store, sub, files
    ns.ag_21584 = (tmp / "ag-21584" / "agent.password").read_text().strip()
    reload_broker(ns, "ag-21584", ns.ag_21584)
    yield ns
    sub.stop()
    store.close()
    broker.stop()


def reload_broker(p, user: str, password: str) -> None:
    """SIGHUP: mosquitto re-reads the password and ACL files (the admin's `systemctl reload`).
    Mosquitto 2.0.11 logs nothing for it, so wait until the new login works."""
    p.broker.proc.send_signal(signal.SIGHUP)

    def login_works() -> bool:
        c, st = tls_client(p, user, password, client_id=user)
        c.disconnect()
        c.loop_stop()
        return st["connack"] == 0

    wait_for(login_works, 10, f"mosquitto to reload and accept {user}", step=0.3)


def tls_client(p, user: str | None, password: str | None, client_id: str = "t") -> tuple[mqtt.Client, dict]:
    """A paho client set up like the agent's publisher (TLS, CA verified, host name checked)."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if user:
        c.username_pw_set(user, password)
    c.tls_set(ca_certs=str(p.files / "ca.crt"), cert_reqs=ssl.CERT_REQUIRED)
    state: dict = {"messages": []}
    c.on_connect = lambda _c, _u, _f, rc, _p: state.setdefault("connack", rc)
    c.on_message = lambda _c, _u, m: state["messages"].append(m.topic)
    c.on_subscribe = lambda _c, _u, mid, rcs, _p: state.setdefault("suback", rcs)
    c.connect("127.0.0.1", p.broker.tls_port)
    c.loop_start()
    wait_for(lambda: "connack" in state, 10, "CONNACK")
    return c, state


def latency(agent_id: str, site: str, seq: int, line: str = "fiber") -> wire.Message:
    return wire.build_message(kind="latency", agent_id=agent_id, province="52", site=site, line=line, seq=seq,
                              measured_at=wire.utc_now() - timedelta(seconds=2),
                              data={"method": "tcp-connect", "target": "h:443", "sent": 1, "received": 1,
                                    "loss_pct": 0})


def publish(c: mqtt.Client, topic: str, payload: bytes) -> None:
    info = c.publish(topic, payload, qos=1)
    info.wait_for_publish(5)
    assert info.is_published()


def rows(p, agent_id: str | None = None) -> list:
    return p.store.events(EventFilter(agent_id=agent_id, messages=True))


def rejects(p) -> list[tuple[str, str]]:
    return [(r.topic, r.reason) for r in reversed(p.store.rejects(10_000))]  # oldest first


def test_one_agents_login_cannot_publish_under_another_site_or_another_agent(province):
    p = province
    c, st = tls_client(p, "ag-21584", p.ag_21584)
    assert st["connack"] == 0
    before = rejects(p)
    # A well-formed message for site 21583, with 21584's login: the ACL denies the topic.
    # MQTT 3.1.1 has no "refused" PUBACK, so mosquitto acknowledges it and drops it (its log
    # says "Denied PUBLISH"); the collector never receives it -- not even as a reject.
    spoofed = latency("ag-21583", "21583", 777_001)
    publish(c, spoofed.topic, spoofed.to_json())
    other_agent = wire.build_message(kind="status", agent_id="ag-21583", province="52", site="21583", seq=0,
                                     measured_at=wire.utc_now(), data={"state": "offline"})
    publish(c, other_agent.topic, other_agent.to_json())  # "21583's agent is offline": denied too
    # A valid message on its own topic, after them on the same connection: the broker handles a
    # connection's packets in order, so once it is in the record the two above would be too.
    own = latency("ag-21584", "21584", 777_002)
    publish(c, own.topic, own.to_json())
    wait_for(lambda: any(r.seq == 777_002 for r in rows(p, "ag-21584")), 10, "the sentinel in the record")
    assert not any(r.seq == 777_001 for r in rows(p, "ag-21583"))
    assert rejects(p) == before, "the spoofed messages never reached the collector"
    log = p.broker.log.read_text(errors="replace")
    assert f"Denied PUBLISH from ag-21584 (d0, q1, r0, m1, '{spoofed.topic}'" in log
    assert f"'{other_agent.topic}'" in log.split("Denied PUBLISH from ag-21584 (d0, q1, r0, m2,")[1]
    c.disconnect()
    c.loop_stop()


def test_an_agent_reads_only_its_own_command_topic_and_cannot_take_another_agents_client_id(province):
    p = province
    # it asks for everything, and for ag-21583's client id (to steal its queued session)
    c, st = tls_client(p, "ag-21584", p.ag_21584, client_id="ag-21583")
    c.subscribe("lw/v1/#", qos=1)
    wait_for(lambda: "suback" in st, 10, "SUBACK")  # (mosquitto checks read access per message, not here)
    # it cannot command itself (nor anyone): only the collector writes command topics
    publish(c, wire.command_topic("52", "21584", "ag-21584"), b'{"forged": true}')
    col = p.sub.client
    col.publish(wire.command_topic("52", "21583", "ag-21583"), b"{}", qos=1)
    col.publish(wire.command_topic("52", "21584", "ag-21584"), b"{}", qos=1).wait_for_publish(5)
    wait_for(lambda: st["messages"], 10, "its own command")
    own = latency("ag-21584", "21584", 777_010)
    publish(c, own.topic, own.to_json())  # allowed to write, not to read back
    wait_for(lambda: any(r.seq == 777_010 for r in rows(p, "ag-21584")), 10, "its measurement in the record")
    assert st["messages"] == [wire.command_topic("52", "21584", "ag-21584")]
    log = p.broker.log.read_text(errors="replace")
    assert "as ag-21584 (p2" in log and "as ag-21583 (p2" not in log, \
        "use_username_as_clientid: the broker used its user name as client id"
    c.disconnect()
    c.loop_stop()


def test_the_collector_rejects_a_payload_claiming_another_site_or_an_agent_not_listed_for_the_site(province):
    p = province
    c, _ = tls_client(p, "ag-21584", p.ag_21584)
    # Allowed topic (its own site) but the payload says site 21583: topic and payload disagree.
    claims_other_site = latency("ag-21584", "21583", 777_020)
    topic = wire.line_topic("52", "21584", "fiber", "latency")
    publish(c, topic, claims_other_site.to_json())
    # Its own site and topic, but signed as ag-21583, which the registry lists for 21583 only.
    claims_other_agent = latency("ag-21583", "21584", 777_021)
    publish(c, claims_other_agent.topic, claims_other_agent.to_json())
    found = wait_for(lambda: [r for r in rejects(p) if r[0] == topic][-2:] if len(
        [r for r in rejects(p) if r[0] == topic]) >= 2 else None, 10, "two rejects")
    assert [reason for _, reason in found] == ["topic_mismatch", "unknown_agent"]
    assert not [r for r in rows(p) if r.seq in (777_020, 777_021)]
    c.disconnect()
    c.loop_stop()


def not_authorised(p) -> int:
    return p.broker.log.read_text(errors="replace").count("disconnected, not authorised")


@pytest.mark.parametrize("login", ["wrong password", "no login"])
def test_an_agent_without_valid_credentials_gets_no_connection_and_exits_3_without_retrying(province, procs, login):
    p = province
    d = p.tmp / f"bad-{login.replace(' ', '-')}"
    d.mkdir()
    text = (p.tmp / "ag-21584" / "agent.toml").read_text().replace(str(p.tmp / "ag-21584"), str(d))
    text = text.replace('state_dir = "/var/lib/linewatch-agent"', f'state_dir = "{d / "state"}"')
    if login == "no login":
        text = text.replace('username = "ag-21584"\n', "").replace(f'password_file = "{d}/agent.password"\n', "")
    (d / "agent.toml").write_text(text)
    (d / "agent.password").write_text("not-the-password\n")
    (d / "ca.crt").write_bytes((p.files / "ca.crt").read_bytes())
    before = not_authorised(p)
    agent = spawn(["linewatch.agent.cli", "-c", str(d / "agent.toml"), "run"], d / "agent.log")
    procs.append(agent)
    rc = agent.proc.wait(20)
    assert rc == 3, agent.output()
    assert "refused this agent's user name or password" in agent.output() or \
           "not authorised" in agent.output(), agent.output()
    assert "Retrying will not help" in agent.output()
    assert not_authorised(p) - before == 1, "exactly one connection attempt, no retry loop"


def test_plaintext_mqtt_to_the_tls_port_gets_no_connack(province):
    """A plain MQTT CONNECT (with a valid login!) to the agents' TLS port: no CONNACK, closed."""
    p = province
    user, pw = b"ag-21584", p.ag_21584.encode()
    var = b"\x00\x04MQTT\x04\xc2\x00\x1e"  # protocol 3.1.1, username+password+clean session, keepalive 30
    payload = b"".join(len(x).to_bytes(2, "big") + x for x in (b"plain", user, pw))
    body = var + payload
    packet = b"\x10" + bytes([len(body)]) + body
    with socket.create_connection(("127.0.0.1", p.broker.tls_port), timeout=5) as s:
        s.sendall(packet)
        answer = b""
        with contextlib.suppress(ConnectionResetError, socket.timeout):
            while chunk := s.recv(100):
                answer += chunk
    assert not answer.startswith(b"\x20"), f"got a CONNACK over plaintext: {answer!r}"
    # the same packet to the loopback listener is answered: it is the TLS port that refused it
    with socket.create_connection(("127.0.0.1", p.broker.port), timeout=5) as s:
        s.sendall(packet)
        assert s.recv(4) == b"\x20\x02\x00\x00"


def test_the_agent_trusts_only_the_provincial_ca_and_checks_the_broker_name(province, tmp_path):
    p = province
    other = security.init_ca(tmp_path / "ca", tmp_path / "broker", ["127.0.0.1"])  # another province's CA
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t")
    c.tls_set(ca_certs=str(other.ca_cert), cert_reqs=ssl.CERT_REQUIRED)  # as agent/publisher.py does
    with pytest.raises(ssl.SSLCertVerificationError):
        c.connect("127.0.0.1", p.broker.tls_port)
    ctx = ssl.create_default_context(cafile=str(p.files / "ca.crt"))
    with socket.create_connection(("127.0.0.1", p.broker.tls_port), timeout=5) as raw:
        with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch|doesn't match"):
            ctx.wrap_socket(raw, server_hostname="linewatch.other-province.example")
    c2 = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="t2")
    c2.tls_set(ca_certs=str(p.files / "ca.crt"), cert_reqs=ssl.CERT_REQUIRED)
    assert c2._ssl_context.check_hostname, "paho checks the broker's name against its certificate"
    # and the agent's log says so in plain words instead of "cannot connect"
    from linewatch.agent.config import MqttConfig
    from linewatch.agent.publisher import diagnose

    why = diagnose(MqttConfig(host="127.0.0.1", port=p.broker.tls_port, tls=True, ca_file=str(other.ca_cert)))
    assert "the broker's certificate is not trusted" in why and str(other.ca_cert) in why
    good = diagnose(MqttConfig(host="127.0.0.1", port=p.broker.tls_port, tls=True, ca_file=str(p.files / "ca.crt")))
    assert good.startswith("TLS works")


def test_an_agent_enrolled_with_the_enrol_command_connects_over_tls_and_its_measurements_reach_the_record(
        province, procs):
    p = province
    out = p.tmp / "ag-21583"
    r = subprocess.run(
        [__import__("sys").executable, "-m", "linewatch.collector.cli", "-c", str(p.cfg_path), "enrol",
         "--site", "21583", "--agent-id", "ag-21583", "--broker-host", "localhost",
         "--broker-port", str(p.broker.tls_port), "--out", str(out), "--install-dir", str(out),
         "--state-dir", str(out / "state"), "--bind", "fiber=127.0.0.1", "--bind", "tslcd=127.0.0.1",
         "--target", "fiber=127.0.0.1", "--target", "tslcd=127.0.0.1"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 0, r.stderr
    assert "systemctl reload mosquitto" in r.stdout and "install.sh agent.toml" in r.stdout
    assert sorted(x.name for x in out.iterdir()) == ["agent.password", "agent.toml", "ca.crt"]
    reload_broker(p, "ag-21583", (out / "agent.password").read_text().strip())
    agent = spawn(["linewatch.agent.cli", "-c", str(out / "agent.toml"), "run"], out / "agent.log")
    procs.append(agent)
    got = wait_for(lambda: [r for r in rows(p, "ag-21583") if r.kind == "latency" and r.ok] or None,
                   30, "a latency measurement of the enrolled agent in the record")
    assert {r.line for r in got} <= {"fiber", "tslcd"} and got[0].site == "21583"
    wait_for(lambda: [a.state for a in p.store.agents() if a.agent_id == "ag-21583"] == ["online"], 10,
             "its retained online status")
    assert agent.stop() == 0, agent.output()
    log = p.broker.log.read_text(errors="replace")
    assert "as ag-21583 (p2" in log and "Denied PUBLISH from ag-21583" not in log


def test_a_retained_measurement_from_an_enrolled_agent_is_refused_and_cleared_under_the_shipped_acl(province):
    """With the generated ACL and the shipped broker config, the collector's empty retained
    publish is allowed, so retained junk does not sit in the broker to come back at every
    subscription."""
    p = province
    c, st = tls_client(p, "ag-21584", p.ag_21584, client_id="ag-21584")
    junk = latency("ag-21584", "21584", 777_100)
    info = c.publish(junk.topic, junk.to_json(), qos=1, retain=True)
    info.wait_for_publish(5)
    wait_for(lambda: (junk.topic, "retained") in rejects(p), 10, "the retained measurement to be refused")
    assert not any(r.seq == 777_100 for r in rows(p, "ag-21584"))
    c.disconnect()
    c.loop_stop()

    # mosquitto's own log (log_type all) says whether the collector's empty retained publish
    # on that topic was received, or denied by the ACL (as it was before the collector could)
    def clearing() -> list[str]:
        return [ln for ln in p.broker.log.read_text(errors="replace").splitlines()
                if "from linewatch-collector" in ln and junk.topic in ln and "(0 bytes)" in ln]

    lines = wait_for(clearing, 10, "the collector's clearing publish in the broker log")
    assert all("Denied" not in ln for ln in lines) and any("r1" in ln for ln in lines), lines


def test_enrol_refuses_a_target_the_agent_would_reject_and_says_why_without_writing_anything(province):
    p = province
    out = p.tmp / "ag-bad"
    r = subprocess.run(
        [__import__("sys").executable, "-m", "linewatch.collector.cli", "-c", str(p.cfg_path), "enrol",
         "--site", "21583", "--agent-id", "ag-21583", "--out", str(out), "--install-dir", str(out),
         "--bind", "fiber=127.0.0.1", "--bind", "tslcd=127.0.0.1", "--target", "fiber=tcp:dichvucong.gov.vn:notaport",
         "--replace"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "the agent config this would write is not valid" in r.stderr and "notaport" in r.stderr, r.stderr
    assert not out.exists()
