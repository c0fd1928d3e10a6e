#!/usr/bin/env bash
# Sourced by scripts/demo and scripts/test: installs what they need, then returns.
# - as root on Debian: Prometheus and Alertmanager (and the python venv module) via apt;
# - always: a virtualenv in .venv with limone-obs and its dev dependencies.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
apt_wanted=()
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  command -v prometheus >/dev/null 2>&1 || apt_wanted+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
    || apt_wanted+=(prometheus-alertmanager)
  if [ "${LIMONE_OBS_WITH_COMPOSE:-0}" = 1 ]; then
    command -v docker-compose >/dev/null 2>&1 || apt_wanted+=(docker-compose)
  fi
  "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_wanted+=(python3-venv)
  if [ ${#apt_wanted[@]} -gt 0 ]; then
    echo "bootstrap: apt-get install ${apt_wanted[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_wanted[@]}" >/dev/null
  fi
elif ! command -v prometheus >/dev/null 2>&1; then
  echo "bootstrap: prometheus not found; as root on Debian this script installs it, else run:"
  echo "  sudo apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"
fi

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv"
  "$PYTHON" -m venv .venv
fi
# Reinstall only when pyproject.toml changed since the last install.
if [ ! -f .venv/.limone-obs-installed ] || [ pyproject.toml -nt .venv/.limone-obs-installed ]; then
  echo "bootstrap: pip install -e .[dev] (quiet)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
  touch .venv/.limone-obs-installed
fi
