"""The incident rules, driven through the real ingest path into a real record: one incident
per problem, confirmed before anyone is told, routed to who can fix it, closed once the
recovery held, and nothing repeated when the engine runs again."""
from __future__ import annotations

import random

import pytest

from linewatch import wire
from linewatch.collector.incidents.engine import CONSUMER
from linewatch.collector.incidents.rules import Policy

from incidentlab import Province


@pytest.fixture(params=["sqlite", "postgresql"])
def prov(request, tmp_path):
    url = None if request.param == "sqlite" else request.getfixturevalue("pg_url")
    p = Province(tmp_path, url)
    yield p
    p.record.close()


def opened(prov, recipient=None):
    return [n for n in prov.notices() if n.event == "opened" and (recipient is None or n.recipient == recipient)]


def test_a_line_that_goes_down_opens_one_incident_for_its_operator_and_one_resolved_notice_after_the_hold(prov):
    prov.latency()
    prov.reach("up")
    prov.run()
    t_down = prov.t
    prov.advance(5)
    prov.reach("down", since=t_down)
    prov.run()
    [inc] = prov.incidents()
    assert (inc.kind, inc.route, inc.cause, inc.line, inc.state) == ("line_down", "operator", "line", "fiber", "open")
    assert inc.opened_at == pytest.approx(t_down, abs=0.01) and inc.evidence[0]["error_code"] == "line_down"
    [n] = opened(prov)
    assert (n.channel, n.recipient) == ("email", "noc@vnpt.example")
    assert n.body["incident"]["isp"] == "VNPT" and n.body["summary"]["contracted_down_mbps"] == 100
    for _ in range(10):  # the line stays down: nothing new
        prov.advance(2)
        prov.run()
    prov.advance(30)
    t_up = prov.t
    prov.reach("up", since=t_up)
    prov.run()
    assert prov.incidents()[0].state == "recovering"
    prov.advance(Policy().resolve_hold_s + 1)
    prov.run()
    [inc] = prov.incidents()
    assert inc.state == "closed" and inc.time_to_repair_s == pytest.approx(t_up - t_down, abs=0.01)
    assert [n.event for n in prov.notices()] == ["opened", "resolved"]


def test_a_flapping_line_is_one_incident_not_a_stream(prov):
    for i in range(6):
        prov.reach("down")
        prov.run()
        prov.advance(20)  # back up for 20 s: well inside the 300 s hold
        prov.reach("up")
        prov.run()
        prov.advance(20)
    [inc] = prov.incidents()
    assert inc.state == "recovering" and inc.summary["flaps"] == 5
    assert len(opened(prov)) == 1


def test_the_gateway_down_too_is_a_lan_fault_for_the_it_office_not_the_operator(prov):
    prov.reach("down", gateway_ok=False)
    prov.run()
    [inc] = prov.incidents()
    assert (inc.kind, inc.route, inc.cause) == ("lan_fault", "it_office", "lan")
    assert [n.recipient for n in opened(prov)] == ["it@tinh.example"]


def test_a_slow_test_asks_for_a_retest_and_only_a_slow_retest_confirms_a_slow_line(prov):
    prov.speed(55, 45)  # 0.55 x 100 down: below 0.8
    prov.run()
    assert prov.incidents() == [] and len(prov.retest_ids()) == 1
    cmd = wire.parse_command(*prov.sent[0])
    assert (cmd.line, cmd.probe, cmd.by) == ("fiber", "bandwidth", "rules")
    prov.advance(20)
    prov.speed(58, 44, command_id=cmd.id)
    prov.run()
    [inc] = prov.incidents()
    assert inc.kind == "slow_line" and inc.summary["speed_down"] == "low" and inc.summary["retest"] is True
    assert inc.summary["threshold_down_mbps"] == 80 and inc.summary["measured_down_mbps"] == 58


def test_a_busy_server_is_not_a_slow_line_when_the_retest_is_fine(prov):
    prov.speed(40, 45)
    prov.run()
    prov.advance(20)
    prov.speed(96, 48, command_id=prov.retest_ids()[0])
    prov.run()
    assert prov.incidents() == []


def test_a_slow_test_while_the_offices_own_network_card_was_busy_accuses_nobody(prov):
    prov.speed(30, 20, nic_busy=True)  # the office was downloading: the line was shared
    prov.run()
    assert prov.incidents() == [] and prov.retest_ids() == []
    prov.speed(30, 20, nic_busy=False)  # the same figure on a quiet card is the operator's
    prov.run()
    assert len(prov.retest_ids()) == 1


def test_a_noisy_but_compliant_line_raises_nothing_over_a_long_run(prov):
    rnd = random.Random(7)
    for i in range(600):  # 10 s rounds, 100 minutes: 1 % random loss, jittery latency
        lost = sum(rnd.random() < 0.01 for _ in range(20))
        prov.latency(rtt=rnd.uniform(8, 45), loss=100 * lost / 20)
        if i % 60 == 0:
            prov.speed(rnd.uniform(82, 95), rnd.uniform(41, 47))
        prov.advance(10)
        if i % 20 == 0:
            prov.run()
    prov.run()
    assert prov.incidents() == []


def test_latency_above_the_limit_in_three_of_five_rounds_is_one_incident(prov):
    for rtt in (20, 80, 90, 30, 120, 95, 99):
        prov.latency(rtt=rtt)
        prov.advance(60)
    prov.run()
    [inc] = prov.incidents()
    assert inc.kind == "high_latency" and inc.summary["max_latency_ms"] == 50


def test_a_service_that_fails_while_the_line_is_up_goes_to_the_it_office(prov):
    prov.reach("up")
    for _ in range(3):
        prov.send("http", {"url": "https://dichvucong.gov.vn/"}, ok=False, error_code="http_error")
        prov.advance(60)
    prov.run()
    [inc] = prov.incidents()
    assert (inc.kind, inc.route, inc.target) == ("service_unreachable", "it_office", "https://dichvucong.gov.vn/")


def test_services_failing_because_the_line_is_down_are_not_separate_incidents(prov):
    prov.reach("down")
    for _ in range(3):
        prov.send("http", {"url": "https://dichvucong.gov.vn/"}, ok=False, error_code="unreachable")
        prov.advance(60)
    prov.run()
    assert [i.kind for i in prov.incidents()] == ["line_down"]


def test_a_silent_site_is_unknown_then_refined_to_line_down_from_its_backlog(prov):
    prov.latency()
    prov.reach("up")
    prov.run()
    cut = prov.t + 1
    prov.advance(300)  # the agent said nothing: the collector marks it silent
    with prov.record.batch():
        pass
    prov.record.mark_silent(120, now=prov.t)
    prov.run()
    [site_inc] = prov.incidents()
    assert (site_inc.kind, site_inc.cause, site_inc.route) == ("site_unreachable", "unknown", "it_office")
    # heal: the agent reconnects and its backlog arrives, measured during the gap
    prov.advance(60)
    back = prov.t
    prov.reach("down", at=cut + 6, since=cut)
    prov.reach("up", at=back - 5, since=back - 5)
    prov.latency()
    prov.run()
    assert len(prov.incidents()) == 2
    line_inc = next(i for i in prov.incidents() if i.kind == "line_down")
    assert line_inc.suppressed_by == site_inc.id and line_inc.late
    assert [n.recipient for n in opened(prov)] == ["it@tinh.example"]  # the operator not yet: unknown cause
    prov.advance(Policy().refine_wait_s + 1)
    prov.run()
    site_inc = prov.record.incident(site_inc.id)
    assert site_inc.cause == "line" and site_inc.summary["refined_to"]["lines"] == ["fiber"]
    refined = [n for n in prov.notices() if n.event == "refined"]
    assert [(n.recipient, n.incident_id) for n in refined] == [("noc@vnpt.example", line_inc.id)]
    assert refined[0].body["incident"]["opened_at"] == pytest.approx(cut, abs=0.01)


def test_a_site_back_after_a_power_cut_is_refined_to_power_or_pc(prov):
    prov.latency()
    prov.run()
    prov.advance(400)
    prov.record.mark_silent(120, now=prov.t)
    prov.run()
    prov.advance(3600)
    prov.send("heartbeat", {"version": "0.2", "uptime_s": 30.0, "queue_depth": 0, "queue_dropped": 0,
                            "probe_errors": 0, "clock_utc": wire.format_time(wire.utc_now())}, line=None)
    prov.run()
    prov.advance(Policy().refine_wait_s + 1)
    prov.run()
    [inc] = prov.incidents()
    assert inc.cause == "power_or_pc"


def test_an_unacknowledged_incident_escalates_to_the_second_contact_then_the_it_office(prov):
    prov.reach("down")
    prov.run()
    [inc] = prov.incidents()
    # the notifier sent the first notice
    prov.record.notices_sent([n.id for n in prov.notices()], "m1", now=prov.t)
    prov.advance(Policy().escalate_after_s + 1)
    prov.run()
    prov.advance(Policy().escalate_after_s + 1)
    prov.run()
    assert [(n.event, n.recipient) for n in prov.notices()] == [
        ("opened", "noc@vnpt.example"), ("escalated", "boss@vnpt.example"), ("escalated2", "it@tinh.example")]


def test_an_acknowledged_incident_does_not_escalate(prov):
    prov.reach("down")
    prov.run()
    [inc] = prov.incidents()
    prov.record.notices_sent([n.id for n in prov.notices()], "m1", now=prov.t)
    _, first = prov.record.acknowledge(inc.id, "Nguyễn Văn A", "đã cử kỹ thuật", now=prov.t + 60)
    _, again = prov.record.acknowledge(inc.id, "someone else", "", now=prov.t + 70)
    assert first and not again
    prov.advance(3 * Policy().escalate_after_s)
    prov.run()
    assert [n.event for n in prov.notices()] == ["opened"]
    inc = prov.record.incident(inc.id)
    assert inc.acked_by == "Nguyễn Văn A" and inc.time_to_ack_s == pytest.approx(60, abs=0.01)


def test_a_maintenance_window_records_the_incident_and_suppresses_its_notices(prov):
    w = prov.record.add_maintenance("21583", "fiber", prov.t - 60, prov.t + 3600, "VNPT nâng cấp cáp", "admin")
    prov.reach("down")
    prov.run()
    [inc] = prov.incidents()
    assert inc.maintenance_id == w.id
    assert [n.state for n in prov.notices()] == ["suppressed"]


def test_many_sites_of_one_operator_failing_together_queue_to_one_recipient_for_one_grouped_notice(tmp_path):
    prov = Province(tmp_path, n_sites=20)
    for i in range(20):
        prov.reach("down", site=f"{21583 + i}")
        prov.advance(0.3)
    prov.run()
    notes = opened(prov)
    assert len(notes) == 20 and {n.recipient for n in notes} == {"noc@vnpt.example"}
    # all wait the group window, so the notifier sends them as one message
    assert max(n.created_at for n in notes) < min(n.not_before for n in notes)


def test_running_the_engine_again_repeats_nothing_and_a_failed_step_leaves_no_trace(prov, monkeypatch):
    prov.reach("down")
    from linewatch.collector.incidents import engine as eng_mod

    def boom(*a, **k):
        raise RuntimeError("crash in the middle of a step")
    monkeypatch.setattr(eng_mod._Run, "save", boom)
    with pytest.raises(RuntimeError):
        prov.engine.step()
    assert prov.incidents() == [] and prov.notices() == [] and prov.record.position(CONSUMER) == 0
    monkeypatch.undo()
    prov.run()
    prov.record.set_position(CONSUMER, 0)  # as if the position had been lost: the state still dedupes
    prov.run()
    assert len(prov.incidents()) == 1 and len(prov.notices()) == 1


def test_status_shows_a_dead_line_as_down_at_once_and_its_open_incident(prov):
    """The complaint that started this: during an outage `status` said both lines "ok"."""
    from linewatch.collector import status as status_mod
    from linewatch.collector.cli_incidents import render_list

    prov.latency()
    prov.reach("up")
    prov.advance(3)
    prov.reach("down")
    prov.run()
    rows = status_mod.build(prov.registry, prov.record, 300, now=prov.t + 1)
    fiber = next(ln for ln in rows[0]["lines"] if ln["line"] == "fiber")
    assert [i["kind"] for i in rows[0]["incidents"]] == ["line_down"]
    reach = next(p for p in fiber["probes"] if p["kind"] == "reach")
    assert reach["ok"] is False and reach["error_code"] == "line_down" and reach["age_s"] < 2
    assert fiber["verdict"]["reach"] == "down" and fiber["verdict"]["latency"] == "ok"
    text = status_mod.render(rows, "vi") + render_list(prov.record.incidents(live_only=True), "vi")
    assert "line_down" in text and "Mất kết nối" in text


def test_loss_is_judged_over_the_window_not_per_round(prov):
    for _ in range(5):  # one lost ping of 20 now and then (5 % of a round, ~2 % of the window): a noisy line
        prov.latency(loss=5.0)
        prov.latency(loss=0.0)
        prov.advance(10)
    prov.run()
    assert prov.incidents() == []
    for _ in range(4):  # a fifth of the pings lost, round after round: a lossy line
        prov.latency(loss=20.0)
        prov.advance(10)
    prov.run()
    [inc] = prov.incidents()
    assert inc.kind == "packet_loss" and inc.summary["loss_pct"] > 5


def test_the_it_office_daily_digest_lists_the_days_incidents(tmp_path):
    from linewatch.collector.notify import email as email_mod
    from linewatch.collector.notify.message import build

    prov = Province(tmp_path, policy=Policy(it_office_copy="digest", digest_hour=0))
    prov.reach("down")
    prov.run()
    [d] = [n for n in prov.notices() if n.event == "digest"]
    assert d.recipient == "it@tinh.example" and d.route == "it_office"
    msg = build("email", d.recipient, [d])
    text = email_mod.render_text(msg)
    assert "21583" in text and "fiber" in text and "Mất kết nối" in text
    prov.advance(3600)
    prov.run()
    assert len([n for n in prov.notices() if n.event == "digest"]) == 1, "one digest a day"


def test_a_retest_the_broker_did_not_acknowledge_stays_queued_and_goes_out_next_round(prov):
    answers = [False, True]
    sent = []

    def flaky(topic, payload):  # the first PUBACK never comes (collector lost the broker)
        ok = answers.pop(0) if answers else True
        if ok:
            sent.append(topic)
        return ok
    prov.engine.publish = flaky
    prov.speed(50, 45)
    prov.run()
    assert sent == [] and len(prov.record.unsent_commands(prov.t, by="rules")) == 1
    prov.run()
    assert len(sent) == 1 and prov.record.unsent_commands(prov.t, by="rules") == []
