"""The ``[export]`` table of collector.toml: where the time-series points go (see EXAMPLE below)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linewatch.config import ConfigError, Section

KINDS = ("victoriametrics", "influxdb2", "influxdb3")


@dataclass(frozen=True)
class ExportConfig:
    url: str = ""                       # empty: no export
    kind: str = "victoriametrics"
    token_file: Path | None = None
    org: str = ""
    bucket: str = ""
    database: str = ""
    batch_points: int = 5000
    timeout_s: float = 10
    contract_every_s: float = 300

    @property
    def enabled(self) -> bool:
        return self.url != ""

    @property
    def target(self) -> str:
        """Where the points go, for messages (never the token)."""
        if self.kind == "influxdb2":
            return f"InfluxDB 2 {self.url} (org {self.org!r}, bucket {self.bucket!r})"
        if self.kind == "influxdb3":
            return f"InfluxDB 3 {self.url} (database {self.database!r})"
        return f"VictoriaMetrics {self.url}"

    def token(self) -> str | None:
        """The API token, read from its file when needed (not at config load, so commands that
        never export do not need the file)."""
        if self.token_file is None:
            return None
        try:
            tok = self.token_file.read_text().strip()
        except FileNotFoundError:
            raise ConfigError(f"[export]: token_file {self.token_file} does not exist (a file holding only the "
                              f"API token, readable by the collector)") from None
        except OSError as e:
            raise ConfigError(f"[export]: token_file {self.token_file} cannot be read: {e.strerror}") from None
        if not tok:
            raise ConfigError(f"[export]: token_file {self.token_file} is empty (put the API token in it)")
        return tok


def parse_export(sec: Section, base: Path) -> ExportConfig:
    """Read an [export] table; a relative token_file is relative to the config file's folder."""
    w = sec.where
    url = sec.str("url", "").strip().rstrip("/")
    kind = sec.str("kind", "victoriametrics", choices=KINDS)
    tf = sec.str("token_file")
    org = sec.str("org", "")
    bucket = sec.str("bucket", "")
    database = sec.str("database", "")
    cfg = ExportConfig(
        url=url, kind=kind, token_file=base / tf if tf else None, org=org, bucket=bucket, database=database,
        batch_points=int(sec.num("batch_points", 5000, ge=1, le=1_000_000, integer=True)),
        timeout_s=float(sec.num("timeout_s", 10, gt=0, le=600)),
        contract_every_s=float(sec.num("contract_every_s", 300, ge=10, le=86400)),
    )
    sec.done()
    if not url:
        return cfg  # export off: the other settings are checked but not required
    if not url.startswith(("http://", "https://")) or "?" in url or "#" in url or any(c.isspace() for c in url) \
            or not url.split("://", 1)[1]:
        raise ConfigError(f"{w}: url {url!r} must be the server's address like http://127.0.0.1:8428 "
                          f"(VictoriaMetrics) or http://127.0.0.1:8086 (InfluxDB), http:// or https://, no ? or #")
    if url.endswith(("/write", "/api/v2/write", "/api/v2")):
        raise ConfigError(f"{w}: url {url!r} must be the server's base address without the write path "
                          f"(e.g. http://127.0.0.1:8428): linewatch adds /api/v2/write itself")
    if kind == "victoriametrics":
        for k, v in (("org", org), ("bucket", bucket), ("database", database)):
            if v:
                raise ConfigError(f"{w}: {k} is not used by VictoriaMetrics (kind = \"victoriametrics\"): remove it, "
                                  f"or set kind = \"influxdb2\" / \"influxdb3\" for an InfluxDB server")
    elif kind == "influxdb2":
        if not org or not bucket:
            raise ConfigError(f"{w}: kind = \"influxdb2\" needs org and bucket (InfluxDB's UI: Load Data > Buckets)")
        if database:
            raise ConfigError(f"{w}: database is for kind = \"influxdb3\"; InfluxDB 2 writes into bucket")
        if tf is None:
            raise ConfigError(f"{w}: kind = \"influxdb2\" needs token_file (a file holding only an API token with "
                              f"write access to bucket {bucket!r})")
    else:  # influxdb3
        if not database:
            raise ConfigError(f"{w}: kind = \"influxdb3\" needs database (the InfluxDB 3 database to write into)")
        if bucket:
            raise ConfigError(f"{w}: bucket is for kind = \"influxdb2\"; InfluxDB 3 writes into database")
    return cfg


EXAMPLE = """\
[export]                    # time series for Grafana, from the record's feed (README "Time series")
# url = ""                         # empty (the default): no export
#
# VictoriaMetrics (deploy/server installs it; Grafana reads it as a Prometheus data source):
# url = "http://127.0.0.1:8428"
# kind = "victoriametrics"         # the default; org/bucket/database are not used
# token_file = "vm.token"          # only behind vmauth or -httpAuth.*: "user:password" (basic) or a bearer token
#   Run VictoriaMetrics with -dedup.minScrapeInterval=1ms: a point sent again after a crash is then
#   stored once (the deploy sets it).
#
# InfluxDB 2.x:
# url = "http://127.0.0.1:8086"
# kind = "influxdb2"
# org = "so-khcn"
# bucket = "linewatch"
# token_file = "influx.token"      # a file holding only an API token with write access to the bucket
#
# InfluxDB 3.x (Core/Enterprise/Cloud; its InfluxDB 2 compatible write API):
# url = "http://127.0.0.1:8181"
# kind = "influxdb3"
# database = "linewatch"
# token_file = "influx.token"      # leave out for a server started with --without-auth
#
# batch_points = 5000              # points per write request
# timeout_s = 10                   # per write request; a failed write is retried (1 s doubling to 60 s)
# contract_every_s = 300           # contracted speeds, staff and open incidents written this often
"""
