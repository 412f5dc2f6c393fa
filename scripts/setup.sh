#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine, run as root:
#   1. Debian packages (Open vSwitch, Mininet's mnexec, ping, tcpdump, ethtool) if missing;
#   2. Open vSwitch started (userspace datapath; the kernel may have no OVS module);
#   3. the project venv (.venv) with Ryu 4.34, eventlet 0.41 and this package (editable);
#   4. the eventlet compatibility shim, so the stock `ryu-manager` works on Python 3.11.
# Running it twice does nothing the second time except quick checks.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${MCAST_SDN_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3}

log() { printf '[setup] %s\n' "$*"; }

need_root() {
  if [ "$(id -u)" != 0 ]; then
    echo "setup.sh: must run as root (Open vSwitch and Mininet need it)" >&2
    exit 1
  fi
}

apt_packages() {
  local pkgs=(openvswitch-switch mininet iputils-ping tcpdump ethtool iproute2 procps psmisc)
  local missing=()
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

start_ovs() {
  if ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
    return
  fi
  log "starting Open vSwitch"
  # ovs-ctl prints a harmless ulimit warning in containers.
  /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random >/dev/null 2>&1 || true
  for _ in $(seq 1 50); do
    ovs-vsctl --timeout=2 show >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "setup.sh: Open vSwitch did not start" >&2
  exit 1
}

make_venv() {
  local stamp="$VENV/.mcast-sdn-stamp"
  local want
  want=$(cat setup.cfg pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$VENV/bin/python" -c 'import ryu, mcast_sdn, mininet' 2>/dev/null; then
    return
  fi
  log "creating venv $VENV"
  [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
  local pip=("$VENV/bin/python" -m pip -q --disable-pip-version-check)
  # Ryu 4.34's setup hook needs easy_install.get_script_args (gone in setuptools >= 67).
  "${pip[@]}" install 'setuptools>=64,<67' wheel
  "${pip[@]}" install --no-build-isolation 'ryu==4.34'
  "${pip[@]}" install --no-build-isolation -e '.[test]'
  "$VENV/bin/python" -m mcast_sdn.compat --install
  echo "$want" > "$stamp"
}

need_root
apt_packages
start_ovs
make_venv
log "ready: venv $VENV, $(ovs-vsctl --version | head -1)"
