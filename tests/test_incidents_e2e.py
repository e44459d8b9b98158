"""Incidents with every part real: agents in network namespaces on lines we blackhole and
shape, mosquitto, the collector process, an SMTP server. What an operator and the IT office
receive is read from the SMTP server's mailbox."""
from __future__ import annotations

import re
import signal
import sys
import time

import pytest

from conftest import wait_for
from linklab import lab  # noqa: F401  (fixture)
from provincelab import HTTP_PORT, SPEED_PORT, ProvinceLab, wait_mail

pytestmark = pytest.mark.usefixtures("lab")


def to(addr):
    return lambda m: addr in m["X-Envelope-To"]


def body(m) -> str:
    return m.get_body(("plain",)).get_content()


def incidents(pl, **kw):
    rec = pl.record()
    try:
        return rec.incidents(**kw)
    finally:
        rec.close()


def wait_reach_up(pl, o, timeout=30):
    def up():
        rec = pl.record()
        try:
            ev = rec.latest_by_kind(o.site, "fiber").get("reach")
            return ev is not None and ev.data["state"] == "up"
        finally:
            rec.close()
    wait_for(up, timeout, f"the agent of {o.site} to report its fiber up")


@pytest.fixture
def province(lab):
    pl = ProvinceLab(lab)
    yield pl


def test_a_blackholed_line_is_emailed_to_its_operator_with_the_evidence_and_healed_once(province):
    pl = province
    o = pl.office(tslcd=True)
    pl.start_dc()
    pl.start_agent(o)
    wait_reach_up(pl, o)
    t_cut = time.time()
    pl.cut([o])
    [m] = wait_mail(pl, to("noc@vnpt.example"), 60, "incident mail to the operator")
    took = float(m["X-Received-At"]) - t_cut
    assert took < 30, f"blackhole -> operator's mailbox took {took:.1f} s"
    text = body(m)
    assert "fiber" in m["Subject"] and o.site in m["Subject"] and "VNPT" in m["Subject"]
    assert "Mất kết nối" in m["Subject"] or "mất kết nối" in text.lower()
    assert "100" in text  # the contracted speed is in the evidence
    csv = [p for p in m.iter_attachments() if p.get_filename("").endswith(".csv")]
    assert csv and "line_down" in csv[0].get_content()
    [inc] = incidents(pl)
    assert (inc.kind, inc.line, inc.route) == ("line_down", "fiber", "operator")
    assert inc.opened_at >= t_cut - 1 and inc.evidence
    pl.heal([o])
    wait_mail(pl, lambda m: to("noc@vnpt.example")(m) and len([x for x in pl.mails()
                                                             if to("noc@vnpt.example")(x)]) >= 2,
              60, "the resolved notice")
    time.sleep(8)  # nothing else follows
    mails = [m for m in pl.mails() if to("noc@vnpt.example")(m)]
    assert len(mails) == 2, [m["Subject"] for m in mails]
    [inc] = incidents(pl)
    assert inc.state == "closed" and 0 < inc.time_to_repair_s < 120
    assert "tslcd" not in " ".join(m["Subject"] for m in mails), "the TSLCD line carried on: no incident"


def test_a_line_at_0_6_of_its_contract_is_one_confirmed_incident_after_the_retest(lab):
    pl = ProvinceLab(lab, contracted_down=20, contracted_up=20)
    o = pl.office(tslcd=True)
    pl.start_dc()
    lab.speedserver(pl.dc, SPEED_PORT)
    pl.shape(o, 12)  # 0.6 x 20 Mbit/s
    pl.start_agent(o, bandwidth=True, latency_s=30)
    wait_reach_up(pl, o)
    t0 = time.time()
    r = pl.cli("test", "--site", o.site, "--line", "fiber", "--probe", "bandwidth", "--wait", "90")
    assert r.returncode == 0 and "download_mbps" in r.stdout, r.stdout + r.stderr  # printed, as asked
    [m] = wait_mail(pl, to("noc@vnpt.example"), 120, "the slow-line mail")
    assert "tốc độ" in (m["Subject"] + body(m)).lower()
    [inc] = incidents(pl)
    assert inc.kind == "slow_line" and inc.summary["retest"] is True
    assert 9 < inc.summary["measured_down_mbps"] < 13.5 and inc.summary["threshold_down_mbps"] == 16
    retest_id = inc.evidence[-1].get("command_id")
    rec = pl.record()
    try:
        assert retest_id and rec.command(retest_id).by == "rules", "confirmed by the rules' own retest"
        from linewatch.collector.record import EventFilter
        tests = rec.events(EventFilter(kind="bandwidth", site=o.site))
        assert len(tests) == 2 and all(not t.ok or t.data["download_mbps"] < 16 for t in tests), \
            "the asked-for test and one retest; nothing more"
    finally:
        rec.close()
    print(f"slow line: first test -> mail {float(m['X-Received-At']) - t0:.1f} s")


def test_the_only_line_of_a_site_cut_is_site_unreachable_then_refined_to_line_down(province):
    pl = province
    o = pl.office(tslcd=False)
    pl.start_dc()
    pl.start_agent(o)
    wait_reach_up(pl, o)
    t_cut = time.time()
    pl.cut([o])
    [m] = wait_mail(pl, to("it@tinh.example"), 60, "site unreachable to the IT office")
    [inc] = incidents(pl)
    assert (inc.kind, inc.cause) == ("site_unreachable", "unknown")
    assert not [x for x in pl.mails() if to("noc@vnpt.example")(x)], "unknown cause: not the operator yet"
    time.sleep(10)
    pl.heal([o])
    [m] = wait_mail(pl, to("noc@vnpt.example"), 90, "the refined line-down mail to the operator")
    incs = {i.kind: i for i in incidents(pl)}
    assert incs["site_unreachable"].cause == "line"
    line = incs["line_down"]
    assert line.late and line.suppressed_by == incs["site_unreachable"].id
    assert abs(line.opened_at - t_cut) < 10, "the outage began when the agent measured it, not when we heard"


def test_twenty_sites_of_one_operator_cut_together_get_one_grouped_notice(lab):
    pl = ProvinceLab(lab)
    offices = [pl.office(tslcd=True) for _ in range(20)]
    pl.start_dc()
    for o in offices:
        pl.start_agent(o, latency_s=60)
    for o in offices:
        wait_reach_up(pl, o, 90)
    pl.cut(offices)
    [m] = wait_mail(pl, to("noc@vnpt.example"), 90, "the grouped notice")
    time.sleep(8)
    mails = [x for x in pl.mails() if to("noc@vnpt.example")(x)]
    assert len(mails) == 1, [x["Subject"] for x in mails]
    text = body(m)
    assert all(o.site in text for o in offices), "the one notice lists every site"
    assert len([i for i in incidents(pl) if i.kind == "line_down"]) == 20


def test_smtp_down_and_a_collector_killed_mid_incident_still_deliver_exactly_once_and_ack_works(province):
    pl = province
    o = pl.office(tslcd=True)
    pl.start_dc()
    pl.start_agent(o)
    wait_reach_up(pl, o)
    pl.stop_smtp()
    pl.cut([o])
    wait_for(lambda: incidents(pl), 30, "the incident")

    def pending_with_error():
        rec = pl.record()
        try:
            return [n for n in rec.notices(state="pending") if n.last_error]
        finally:
            rec.close()
    wait_for(pending_with_error, 60, "a notice waiting for SMTP, with its error")
    pl.collector.send_signal(signal.SIGKILL)
    pl.collector.wait()
    pl.start_smtp()
    pl.start_collector()
    [m] = wait_mail(pl, to("noc@vnpt.example"), 120, "the mail after SMTP came back")
    time.sleep(8)
    assert len([x for x in pl.mails() if to("noc@vnpt.example")(x)]) == 1
    [inc] = incidents(pl)
    # the signed link in the mail: a forged one is refused, the real one acknowledges (GET shows a form only)
    link = re.search(r"http://127\.0\.0\.1:%d/ack/\S+" % HTTP_PORT, body(m)).group(0)
    fetch = ("import sys, urllib.request, urllib.error\n"
             "url, data = sys.argv[1], (sys.argv[2].encode() if len(sys.argv) > 2 else None)\n"
             "try:\n r = urllib.request.urlopen(url, data=data, timeout=10); print(r.status); print(r.read().decode())\n"
             "except urllib.error.HTTPError as e:\n print(e.code); print(e.read().decode())\n")
    forged = link[:-3] + ("000" if not link.endswith("000") else "111")
    r = pl.lab.run(pl.dc, sys.executable, "-c", fetch, forged)
    assert r.stdout.startswith("403")
    r = pl.lab.run(pl.dc, sys.executable, "-c", fetch, link)
    assert r.stdout.startswith("200") and incidents(pl)[0].acked_at is None, "GET must not acknowledge"
    query = link.split("?", 1)[1]
    r = pl.lab.run(pl.dc, sys.executable, "-c", fetch, link.split("?")[0],
                   query + "&by=Tr%E1%BA%A7n+NOC&note=%C4%91%C3%A3+c%E1%BB%AD+k%E1%BB%B9+thu%E1%BA%ADt")
    assert r.stdout.startswith("200"), r.stdout
    [inc] = incidents(pl)
    assert inc.acked_by == "Trần NOC <noc@vnpt.example>" and inc.ack_via == "link"  # who, and which link
    r = pl.cli("incidents", "ack", str(inc.id), "--by", "someone")
    assert r.returncode == 0 and "already" in r.stdout
    r = pl.cli("incidents", "show", str(inc.id))
    assert "Trần NOC" in r.stdout and "Mất kết nối" in r.stdout, r.stdout
