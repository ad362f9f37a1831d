#!/usr/bin/env bash
# scripts/e2e.sh BINARY [PYTEST ARGS...] - run the end-to-end suite (tests/e2e)
# against BINARY, passed to the tests as SOCKIT_BIN (absolute path).
#
# pytest exit code 5 ("no tests collected") counts as success while the suite
# is still empty; every other failure is returned as is.
#
# Timeouts: the Debian pytest has no pytest-timeout plugin, so each test gets
# faulthandler_timeout (a traceback dump of every thread after
# SOCKIT_E2E_TEST_TIMEOUT s, default 120) and the whole run is bounded by
# coreutils `timeout` (SOCKIT_E2E_TIMEOUT s, default 1800).
set -euo pipefail

if (($# < 1)); then
  echo "usage: $0 BINARY [PYTEST ARGS...]" >&2
  exit 2
fi
bin=$1
shift
root=$(cd "$(dirname "$0")/.." && pwd)
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
if [[ ! -x $bin ]]; then
  echo "e2e: $bin is not an executable; build it first (make build)" >&2
  exit 1
fi
python=${PYTHON:-/usr/bin/python3}
per_test=${SOCKIT_E2E_TEST_TIMEOUT:-120}
overall=${SOCKIT_E2E_TIMEOUT:-1800}

if [[ ! -d $root/tests/e2e ]]; then
  echo "e2e: no tests/e2e yet, nothing to run"
  exit 0
fi

echo "e2e: SOCKIT_BIN=$bin"
cd "$root"
rc=0
SOCKIT_BIN=$bin timeout -k 10 "$overall" \
  "$python" -m pytest -q -o "faulthandler_timeout=$per_test" --timeout "$per_test" \
  -n "${SOCKIT_E2E_JOBS:-4}" -p no:cacheprovider tests/e2e "$@" || rc=$?
case $rc in
  0) ;;
  5) echo "e2e: no tests collected in tests/e2e (not a failure)"; rc=0 ;;
  124) echo "e2e: the whole run took longer than ${overall}s, killed" >&2 ;;
  *) echo "e2e: pytest failed (exit $rc) for $bin" >&2 ;;
esac
exit "$rc"
