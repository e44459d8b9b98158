#!/usr/bin/env bash
# Install the linewatch collector and Mosquitto on a Debian 12 server (run as root from a checkout).
#   sudo deploy/server/install.sh
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv mosquitto
id linewatch >/dev/null 2>&1 || useradd --system --home /var/lib/linewatch --shell /usr/sbin/nologin linewatch
python3 -m venv /opt/linewatch/venv
/opt/linewatch/venv/bin/pip install -q "$SRC[collector]"
install -d -o linewatch -g linewatch /var/lib/linewatch
install -d /etc/linewatch
[ -f /etc/linewatch/collector.toml ] || sed 's|^record = .*|record = "/var/lib/linewatch/record.sqlite3"|' \
  "$SRC/collector/example-collector.toml" > /etc/linewatch/collector.toml
[ -f /etc/linewatch/registry.toml ] || cp "$SRC/collector/example-registry.toml" /etc/linewatch/registry.toml
install -m 644 "$SRC/deploy/server/mosquitto.conf" /etc/mosquitto/conf.d/linewatch.conf
install -m 644 "$SRC/deploy/server/linewatch-collector.service" /etc/systemd/system/
systemctl daemon-reload
systemctl restart mosquitto
systemctl enable --now linewatch-collector
echo "Installed. Edit /etc/linewatch/registry.toml (your sites and lines), then:"
echo "  linewatch-collector -c /etc/linewatch/collector.toml check-config && systemctl restart linewatch-collector"
echo "  /opt/linewatch/venv/bin/linewatch-collector -c /etc/linewatch/collector.toml status"
