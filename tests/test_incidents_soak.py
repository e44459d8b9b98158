"""Long runs (./dev test-soak): a noisy but compliant line raises nothing."""
from __future__ import annotations

import os
import time

import pytest

from conftest import wait_for
from linklab import lab  # noqa: F401  (fixture)
from provincelab import SPEED_PORT, ProvinceLab

pytestmark = [pytest.mark.soak, pytest.mark.usefixtures("lab")]
SOAK_S = float(os.environ.get("LW_SOAK_S", "600"))


def test_a_line_at_0_9_of_its_contract_with_1_percent_random_loss_raises_no_incident_over_a_long_run(lab):
    # Shaped to 0.9 x contract at the IP level: the speed test's TCP goodput is ~95 % of that
    # (~0.85 x contract), compliant with margin. Shaped to exactly 0.85 the goodput is 0.80-0.81 x,
    # on the 0.8 line itself, and a confirmed slow line there is the rules working, not noise.
    pl = ProvinceLab(lab, contracted_down=20, contracted_up=20)
    o = pl.office(tslcd=True)
    pl.start_dc()
    lab.speedserver(pl.dc, SPEED_PORT)
    pl.shape(o, 18)  # 0.9 x 20 Mbit/s
    pl.loss(o, 1)
    pl.start_agent(o, bandwidth=True, latency_s=10, bandwidth_every_s=60)
    time.sleep(SOAK_S)
    rec = pl.record()
    try:
        from linewatch.collector.record import EventFilter
        speeds = [e.data["download_mbps"] for e in rec.events(EventFilter(kind="bandwidth", site=o.site, ok=True))]
        reach = rec.events(EventFilter(kind="reach", site=o.site, line="fiber"))
        rounds = rec.events(EventFilter(kind="latency", site=o.site, line="fiber"))
        lost = sum(e.data["sent"] - e.data["received"] for e in rounds)
        sent = sum(e.data["sent"] for e in rounds)
        incidents = rec.incidents()
    finally:
        rec.close()
    print(f"{SOAK_S:.0f} s: {len(speeds)} speed tests {min(speeds):.1f}-{max(speeds):.1f} Mbit/s, "
          f"{len(rounds)} latency rounds, {lost}/{sent} pings lost, {len(reach)} reach messages, "
          f"incidents {[(i.kind, i.summary) for i in incidents]}")
    assert len(speeds) >= SOAK_S / 60 - 3 and min(speeds) >= 16, "the line really was compliant"
    assert 0 < lost, "the loss really was there"
    assert incidents == []
