#!/usr/bin/env bash
# Install the linewatch collector and Mosquitto on a Debian 12 server (run as root from a checkout).
#   sudo deploy/server/install.sh BROKER_HOST
# BROKER_HOST is the name (or address) the communes' agents use to reach this server; it goes
# into the broker's TLS certificate (made once, with the provincial CA: see README "Security").
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
HOST=${1:-}
if [ -z "$HOST" ] && [ ! -f /etc/mosquitto/linewatch/server.crt ]; then
  echo "usage: install.sh BROKER_HOST   (the name agents use to reach this server, e.g. linewatch.tinh.example)" >&2
  exit 2
fi
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv mosquitto openssl victoria-metrics
id linewatch >/dev/null 2>&1 || useradd --system --home /var/lib/linewatch --shell /usr/sbin/nologin linewatch
python3 -m venv /opt/linewatch/venv
/opt/linewatch/venv/bin/pip install -q "$SRC[collector]"
install -d -o linewatch -g linewatch /var/lib/linewatch
install -d /etc/linewatch
install -d -m 700 /etc/linewatch/ca                       # the CA's private key: root only
install -d -m 750 -g mosquitto /etc/mosquitto/linewatch   # what Mosquitto reads: certs, passwd, acl
[ -f /etc/linewatch/collector.toml ] || sed 's|^record = .*|record = "/var/lib/linewatch/record.sqlite3"|' \
  "$SRC/collector/example-collector.toml" > /etc/linewatch/collector.toml
[ -f /etc/linewatch/registry.toml ] || cp "$SRC/collector/example-registry.toml" /etc/linewatch/registry.toml
LWC="/opt/linewatch/venv/bin/linewatch-collector -c /etc/linewatch/collector.toml"
# CA (kept if there), broker certificate, the collector's broker login, ACL from the registry
if [ -n "$HOST" ]; then $LWC init-ca --host "$HOST"; else $LWC acl; fi
# the collector logs in to the broker like everyone else (allow_anonymous false)
sed -i -e 's|^# username = "collector"$|username = "linewatch-collector"|' \
       -e 's|^# password_file = "collector.password"$|password_file = "collector.password"|' /etc/linewatch/collector.toml
[ -n "$HOST" ] && ! grep -q '^broker_host' /etc/linewatch/collector.toml && \
  sed -i -e "s|^# broker_host = .*|broker_host = \"$HOST\"|" /etc/linewatch/collector.toml
[ -f /etc/linewatch/collector.password ] && chgrp linewatch /etc/linewatch/collector.password && \
  chmod 640 /etc/linewatch/collector.password
install -m 644 "$SRC/deploy/server/mosquitto.conf" /etc/mosquitto/conf.d/linewatch.conf
# the time-series server: VictoriaMetrics (Debian), retention and de-duplication set for linewatch,
# scraping the collector's /metrics; the collector exports to it ([export] url)
install -m 644 "$SRC/deploy/server/victoria-metrics.default" /etc/default/victoria-metrics
install -m 644 "$SRC/deploy/server/scrape.yml" /etc/linewatch/scrape.yml
grep -q '^\[export\]' /etc/linewatch/collector.toml || printf '\n[export]\nurl = "http://127.0.0.1:8428"\n' \
  >> /etc/linewatch/collector.toml
systemctl enable victoria-metrics
systemctl restart victoria-metrics
# Grafana's provisioning (datasource, dashboards): in place whether Grafana is installed now or later
install -d /etc/grafana/provisioning/datasources /etc/grafana/provisioning/dashboards /var/lib/grafana/dashboards/linewatch
cp -r "$SRC/deploy/grafana/dashboards/." /var/lib/grafana/dashboards/linewatch/
install -m 644 "$SRC/deploy/grafana/provisioning/datasources/linewatch.yaml" /etc/grafana/provisioning/datasources/
install -m 644 "$SRC/deploy/grafana/provisioning/dashboards/linewatch.yaml" /etc/grafana/provisioning/dashboards/
systemctl is-active --quiet grafana-server && systemctl restart grafana-server || \
  echo "Grafana is not installed here: its provisioning is in /etc/grafana/provisioning (README \"Dashboards\")"
install -m 644 "$SRC/deploy/server/linewatch-collector.service" /etc/systemd/system/
systemctl daemon-reload
systemctl restart mosquitto
systemctl enable --now linewatch-collector
systemctl restart linewatch-collector
echo "Installed. Edit /etc/linewatch/registry.toml (your sites, lines and agents = [...]), then:"
echo "  $LWC check-config && $LWC acl && systemctl reload mosquitto && systemctl restart linewatch-collector"
echo "Enrol each commune's agent (password + ready config folder to hand over):"
echo "  $LWC enrol --site 21583 --agent-id ag-21583-01 --out /root/enrol/ag-21583-01 --bind LINE=ADDRESS ..."
echo "  /opt/linewatch/venv/bin/linewatch-collector -c /etc/linewatch/collector.toml status"
