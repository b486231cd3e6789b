#!/bin/sh
# Runs the PHP SDK's PHPUnit suites (unit, then integration against a real plasmd) and exits
# non-zero on any failure. Needs Debian's php-cli, php-curl and phpunit:
#   apt-get install -y --no-install-recommends php-cli php-curl phpunit
# Integration tests start `plasmd run` from $PLASMD_BIN, else ../.venv/bin/plasmd, else PATH.
# When a plasmd is found they must run (PLASM_REQUIRE_INTEGRATION=1): a skip becomes a failure.
# Extra arguments go to phpunit (e.g. --testsuite unit, --filter Receipt).
set -eu
cd "$(dirname "$0")"

if [ -z "${PLASM_REQUIRE_INTEGRATION:-}" ]; then
    if [ -n "${PLASMD_BIN:-}" ] || [ -x ../.venv/bin/plasmd ] || command -v plasmd >/dev/null 2>&1; then
        PLASM_REQUIRE_INTEGRATION=1
    else
        PLASM_REQUIRE_INTEGRATION=0
        echo "run-tests.sh: no plasmd found; integration tests will be skipped" >&2
    fi
fi
export PLASM_REQUIRE_INTEGRATION

exec phpunit --configuration phpunit.xml "$@"
