"""The ``[notify]`` and ``[http]`` tables of collector.toml (see EXAMPLE below)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from linewatch.config import ConfigError, Section

from .text import LANGS

@dataclass(frozen=True)
class NotifyConfig:
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_username: str | None = None
    smtp_password_file: Path | None = None
    from_addr: str = "linewatch@localhost"
    timeout_s: float = 20
    public_url: str = "http://127.0.0.1:8470"
    secret_file: Path = Path("notify.secret")
    webhook_secret_file: Path = Path("notify.secret")
    max_per_hour: int = 12
    ack_link_days: float = 7
    lang: str = "vi"

    def smtp_password(self) -> str | None:
        """The SMTP password, read from its file when needed (not at config load, so commands
        that never send mail do not need the file)."""
        if self.smtp_password_file is None:
            return None
        try:
            return self.smtp_password_file.read_text().strip()
        except FileNotFoundError:
            raise ConfigError(f"[notify]: smtp_password_file {self.smtp_password_file} does not exist "
                              f"(a file holding only the SMTP password, readable by the collector)") from None
        except OSError as e:
            raise ConfigError(f"[notify]: smtp_password_file {self.smtp_password_file} cannot be read: "
                              f"{e.strerror}") from None


@dataclass(frozen=True)
class HttpConfig:
    listen: str = "127.0.0.1"
    port: int = 8470  # 0: no HTTP endpoint

    @property
    def enabled(self) -> bool:
        return self.port != 0


def parse_notify(sec: Section, base: Path) -> NotifyConfig:
    """Read a [notify] table; relative file names are relative to the config file's folder."""
    w = sec.where
    port_default = 465 if sec.data.get("smtp_ssl") is True else 587 if sec.data.get("smtp_starttls") is True else 25
    starttls = sec.bool("smtp_starttls", False)
    use_ssl = sec.bool("smtp_ssl", False)
    if starttls and use_ssl:
        raise ConfigError(f"{w}: smtp_ssl and smtp_starttls cannot both be true: use smtp_ssl = true for a server "
                          f"that speaks TLS at once (port 465), smtp_starttls = true for one that upgrades "
                          f"(port 587)")
    username = sec.str("smtp_username")
    pw_file = sec.str("smtp_password_file")
    if username and not pw_file:
        raise ConfigError(f"{w}: smtp_username needs smtp_password_file (a file holding only the password)")
    if pw_file and not username:
        raise ConfigError(f"{w}: smtp_password_file needs smtp_username")
    from_addr = sec.str("from_addr", "linewatch@localhost")
    if "@" not in from_addr or any(c.isspace() for c in from_addr) or any(c in from_addr for c in "<>,"):
        raise ConfigError(f"{w}: from_addr {from_addr!r} is not an e-mail address like linewatch@tinh.example")
    public_url = sec.str("public_url", "http://127.0.0.1:8470").rstrip("/")
    if not public_url.startswith(("http://", "https://")) or "?" in public_url or "#" in public_url \
            or any(c.isspace() for c in public_url) or len(public_url.split("://", 1)[1]) == 0:
        raise ConfigError(f"{w}: public_url {public_url!r} must be the address people open, like "
                          f"https://linewatch.tinh.example (http:// or https://, no ? or #)")
    secret_file = base / sec.str("secret_file", "notify.secret")
    wh = sec.str("webhook_secret_file")
    cfg = NotifyConfig(
        smtp_host=sec.str("smtp_host", "127.0.0.1"),
        smtp_port=int(sec.num("smtp_port", port_default, ge=1, le=65535, integer=True)),
        smtp_starttls=starttls,
        smtp_ssl=use_ssl,
        smtp_username=username,
        smtp_password_file=base / pw_file if pw_file else None,
        from_addr=from_addr,
        timeout_s=float(sec.num("timeout_s", 20, gt=0, le=600)),
        public_url=public_url,
        secret_file=secret_file,
        webhook_secret_file=base / wh if wh else secret_file,
        max_per_hour=int(sec.num("max_per_hour", 12, ge=1, le=3600, integer=True)),
        ack_link_days=float(sec.num("ack_link_days", 7, gt=0, le=365)),
        lang=sec.str("lang", "vi", choices=LANGS),
    )
    if not cfg.smtp_host.strip():
        raise ConfigError(f"{w}: smtp_host must not be empty")
    sec.done()
    return cfg


def parse_http(sec: Section) -> HttpConfig:
    listen = sec.str("listen", "127.0.0.1")
    if not listen.strip() or any(c.isspace() for c in listen):
        raise ConfigError(f"{sec.where}: listen must be an address like \"127.0.0.1\" or \"0.0.0.0\", got {listen!r}")
    port = int(sec.num("port", 8470, ge=0, le=65535, integer=True))
    sec.done()
    return HttpConfig(listen, port)


EXAMPLE = """\
[notify]                    # e-mail, webhook and chat notices of incidents (README "Incidents")
# smtp_host = "127.0.0.1"          # the office's mail relay
# smtp_port = 25                   # default 25; 587 with smtp_starttls, 465 with smtp_ssl
# smtp_starttls = false            # upgrade to TLS after connecting (port 587)
# smtp_ssl = false                 # TLS from the start (port 465); not both
# smtp_username = "linewatch"
# smtp_password_file = "smtp.password"     # a file holding only the password
# from_addr = "linewatch@tinh.example"
# timeout_s = 20                   # per SMTP conversation / webhook / chat delivery
# public_url = "https://linewatch.tinh.example"  # where acknowledgement links point ([http] behind a proxy)
# secret_file = "notify.secret"    # signs acknowledgement links; made (0600, random) if missing
# webhook_secret_file = "notify.secret"    # HMAC key of X-Linewatch-Signature: give it to the operators
# max_per_hour = 12                # messages per recipient and channel per hour; the rest wait, grouped
# ack_link_days = 7                # acknowledgement links in messages work this long
# lang = "vi"                      # "vi" or "en"

[http]                      # acknowledgement links (/ack/...), /healthz
# listen = "127.0.0.1"             # behind a reverse proxy (public_url); "0.0.0.0" to listen everywhere
# port = 8470                      # 0: no HTTP endpoint (links in messages then do not work)
"""
