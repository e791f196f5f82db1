#!/usr/bin/env bash
# Installs the Debian packages the test suite and `make prod` need when they are missing:
# chromium (browser tests), the PostgreSQL server (service tests on PostgreSQL, make prod)
# and redis-server (make prod's state store, the multi-worker test in tests/e2e/test_prod.py).
set -euo pipefail
need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
[ -x /usr/bin/redis-server ] || need+=(redis-server)
[ ${#need[@]} -eq 0 ] && exit 0
echo "Installing Debian packages: ${need[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${need[@]}" >/dev/null
