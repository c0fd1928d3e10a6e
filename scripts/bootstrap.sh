#!/usr/bin/env bash
# Sourced by scripts/demo and scripts/test: installs what they need, then returns.
# - as root on Debian: Prometheus, Alertmanager, Redis (and the python venv module) via apt;
#   for the tests also docker-compose and nginx (LIMONE_OBS_WITH_COMPOSE=1) and chromium with its
#   driver (LIMONE_OBS_WITH_BROWSER=1);
# - always: a virtualenv in .venv with limone-obs and its dev dependencies, at the releases
#   of scripts/constraints.txt.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
apt_wanted=()
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  command -v prometheus >/dev/null 2>&1 || apt_wanted+=(prometheus)
  command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 \
    || apt_wanted+=(prometheus-alertmanager)
  # The demo caches in a real Redis (started by `limone-obs up` on 127.0.0.1).
  command -v redis-server >/dev/null 2>&1 || apt_wanted+=(redis-server)
  if [ "${LIMONE_OBS_WITH_COMPOSE:-0}" = 1 ]; then
    command -v docker-compose >/dev/null 2>&1 || apt_wanted+=(docker-compose)
    # compose/nginx.conf runs in a real nginx in the tests (tests/stack/test_compose.py).
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || apt_wanted+=(nginx-light)
  fi
  # The test suite drives a real headless browser (page-load timing, the HTML report).
  if [ "${LIMONE_OBS_WITH_BROWSER:-0}" = 1 ]; then
    command -v chromium >/dev/null 2>&1 || apt_wanted+=(chromium)
    command -v chromedriver >/dev/null 2>&1 || apt_wanted+=(chromium-driver)
  fi
  "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1 || apt_wanted+=(python3-venv)
  if [ ${#apt_wanted[@]} -gt 0 ]; then
    echo "bootstrap: apt-get install ${apt_wanted[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_wanted[@]}" >/dev/null
    # Debian starts the packages' system services (public, on :9090 and :9093); the demo
    # and the tests run their own servers on 127.0.0.1, so stop what was just installed.
    if [ -d /run/systemd/system ]; then
      for unit in prometheus prometheus-alertmanager redis-server nginx; do
        package=$unit; [ "$unit" = nginx ] && package=nginx-light
        if printf '%s\n' "${apt_wanted[@]}" | grep -qx "$package"; then
          systemctl disable --now "$unit" >/dev/null 2>&1 \
            && echo "bootstrap: stopped and disabled the $unit service Debian started"
        fi
      done
    fi
  fi
elif ! command -v prometheus >/dev/null 2>&1; then
  echo "bootstrap: prometheus not found; as root on Debian this script installs it, else run:"
  echo "  sudo apt-get install -y --no-install-recommends prometheus prometheus-alertmanager"
fi

# A .venv without pip is what a failed `python3 -m venv` leaves (no python3-venv): redo it.
if ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  echo "bootstrap: creating .venv"
  if ! "$PYTHON" -m venv --clear .venv; then
    echo "bootstrap: '$PYTHON -m venv' failed; on Debian: apt-get install python3-venv" >&2
    exit 1
  fi
  rm -f .venv/.limone-obs-installed
fi
# The extras to install: the demo needs only the stack's (LIMONE_OBS_EXTRAS=stack), the
# tests the development tools (the default). Reinstall when pyproject.toml changed since
# the last install, or when these extras are not among those installed. The releases are
# those of scripts/constraints.txt (what the suite last passed with), not the newest.
extras=${LIMONE_OBS_EXTRAS:-dev}
marker=.venv/.limone-obs-installed
stale=0
if [ ! -f "$marker" ] || [ pyproject.toml -nt "$marker" ] \
  || [ scripts/constraints.txt -nt "$marker" ]; then
  stale=1
fi
if [ "$stale" = 1 ] || ! grep -qx "$extras" "$marker"; then
  echo "bootstrap: pip install -e .[$extras] (quiet)"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check \
    --constraint scripts/constraints.txt -e ".[$extras]"
  # The marker lists the extras installed as the files now say. dev includes stack (a
  # dev install serves the demo too). A stale marker is replaced, not added to: the
  # extras it listed were installed as the files said before (./scripts/demo after a
  # pin moved must not leave ./scripts/test's tools on the old pins).
  if [ "$extras" = dev ]; then
    printf 'dev\nstack\n' > "$marker"
  elif [ "$stale" = 1 ]; then
    echo "$extras" > "$marker"
  else
    echo "$extras" >> "$marker"
  fi
fi
