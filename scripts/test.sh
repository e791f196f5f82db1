#!/usr/bin/env bash
# The whole suite: service/state tests on SQLite + a throwaway PostgreSQL, then the
# browser tests (Playwright + /usr/bin/chromium) in a separate pytest run.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
export PATH="$PWD/.venv/bin:$PATH" REFLEX_USE_NPM=1 REFLEX_TELEMETRY_ENABLED=false

bash scripts/pg.sh stop
if ! RXCRM_TEST_PG_URL=$(bash scripts/pg.sh start); then
  echo "Could not start PostgreSQL for the tests" >&2
  exit 1
fi
export RXCRM_TEST_PG_URL
trap 'bash scripts/pg.sh stop' EXIT

$PY -m pytest tests --ignore=tests/e2e -q -p no:cacheprovider "$@"
rc1=$?
$PY -m pytest tests/e2e -q -p no:asyncio -p no:cacheprovider "$@"
rc2=$?
echo "service/state tests: exit $rc1; browser tests: exit $rc2"
[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ]
