"""``[line.bandwidth]``: the typed config of the bandwidth probe, its defaults and validation."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from linewatch.config import ConfigError, Section

from .calendar import Window

METHODS = ("linewatch", "speedtest", "speedtest-mini", "iperf3")
MB = 1_000_000


@dataclass(frozen=True)
class BandwidthConfig:
    method: str
    target: str | None  # base URL (linewatch, speedtest-mini), HOST:PORT (iperf3), server id (speedtest)
    streams: int = 4
    max_duration_s: float = 10.0  # per direction
    warmup_s: float = 2.0
    max_test_mb: float = 200.0
    monthly_budget_mb: float = 5000.0
    window: Window | None = None
    interval_s: float = 600.0
    timeout_s: float = 5.0
    stop_when_stable: bool = True
    state_dir: Path | None = None  # filled in from [agent] state_dir


def parse(sec: Section) -> BandwidthConfig:
    method = sec.str("method", "linewatch", choices=METHODS)
    target = sec.str("target", required=method != "speedtest")
    if method in ("linewatch", "speedtest-mini"):
        u = urlsplit(target)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ConfigError(f"{sec.where}: target {target!r} must be the speed server's address, "
                              f"e.g. \"http://10.52.0.5:8090\"")
    elif method == "iperf3":
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"{sec.where}: target {target!r} must be HOST:PORT of an iperf3 server, "
                              f"e.g. \"10.52.0.5:5201\"")
    # default: once a day at a random time in the small hours; "" = every interval_s
    window = sec.str("window", "01:00-05:00")
    try:
        parsed_window = Window.parse(window) if window else None
    except ValueError as e:
        raise ConfigError(f"{sec.where}: {e}") from None
    cfg = BandwidthConfig(
        method=method, target=target,
        streams=sec.num("streams", 4, ge=1, le=16, integer=True),
        max_duration_s=sec.num("max_duration_s", 10.0, ge=2, le=60),
        warmup_s=sec.num("warmup_s", 2.0, ge=0, le=10),
        max_test_mb=sec.num("max_test_mb", 200.0, gt=0),
        monthly_budget_mb=sec.num("monthly_budget_mb", 5000.0, gt=0),
        window=parsed_window,
        interval_s=sec.num("interval_s", 600.0, ge=5),
        timeout_s=sec.num("timeout_s", 5.0, gt=0, le=60),
        stop_when_stable=sec.bool("stop_when_stable", True),
    )
    if cfg.warmup_s >= cfg.max_duration_s - 1:
        raise ConfigError(f"{sec.where}: warmup_s must be at least 1 s shorter than max_duration_s")
    sec.done()
    return cfg
