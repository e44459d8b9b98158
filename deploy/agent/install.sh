#!/usr/bin/env bash
# Install the linewatch agent on a commune PC running Debian/Ubuntu, or a Raspberry Pi
# (Raspberry Pi OS). Run as root from a checkout, with the config the province gave you:
#   sudo deploy/agent/install.sh /path/to/agent.toml
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
CONFIG=${1:?usage: install.sh AGENT_CONFIG.toml (the file the provincial IT office sent)}
apt-get update -q
DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3 python3-venv
id linewatch >/dev/null 2>&1 || useradd --system --home /var/lib/linewatch-agent --shell /usr/sbin/nologin linewatch
python3 -m venv /opt/linewatch/venv
/opt/linewatch/venv/bin/pip install -q "$SRC[agent]"
install -d /etc/linewatch
install -m 640 -g linewatch "$CONFIG" /etc/linewatch/agent.toml
# From `linewatch-collector enrol`: the agent's broker password and the provincial CA, next to the config
CDIR=$(cd "$(dirname "$CONFIG")" && pwd)
[ -f "$CDIR/agent.password" ] && install -m 640 -g linewatch "$CDIR/agent.password" /etc/linewatch/agent.password
[ -f "$CDIR/ca.crt" ] && install -m 644 "$CDIR/ca.crt" /etc/linewatch/ca.crt
/opt/linewatch/venv/bin/linewatch-agent -c /etc/linewatch/agent.toml check-config
install -m 644 "$SRC/deploy/agent/linewatch-agent.service" /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now linewatch-agent
echo "Installed. Check a line now with:"
echo "  /opt/linewatch/venv/bin/linewatch-agent -c /etc/linewatch/agent.toml probe"
