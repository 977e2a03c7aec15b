#!/usr/bin/env bash
# Installs everything vrl3-repro needs into ./.venv (Python >= 3.10), plus the EGL libraries MuJoCo renders with.
set -euo pipefail
cd "$(dirname "$0")"

apt_install_or_stop() {  # hint, package...: install as root where apt-get exists, else stop with the hint
  local hint=$1; shift
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "install.sh: $hint" >&2
    exit 1
  fi
}

if ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'; then
  apt_install_or_stop "libEGL is missing; install your distribution's libegl1 + Mesa (e.g. apt-get install libegl1 libegl-mesa0)" \
    libegl1 libegl-mesa0 libgl1 libgles2
fi

if ! command -v c++ >/dev/null && ! command -v g++ >/dev/null; then
  echo "install.sh: no C++ compiler found; agent.compile (TorchInductor) and its tests need one (e.g. apt-get install g++)" >&2
fi

# Debian/Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package
if ! python3 -c 'import ensurepip' 2>/dev/null; then
  apt_install_or_stop "python3 cannot create virtual environments; install python3-venv (e.g. apt-get install python3-venv)" \
    python3-venv
fi

python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[workflow,test]'
echo "install.sh: done; activate with 'source .venv/bin/activate'"
