#!/usr/bin/env bash
# Sets up, builds and runs every test: unit and end-to-end, first in a debug
# build, then again under AddressSanitizer + UndefinedBehaviorSanitizer (the
# end-to-end suites on PostgreSQL in the first, on SQLite in the second).
# Artefacts of failures stay under build/<preset>/Testing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --tests
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error)
if [ -f tests/browser/package-lock.json ]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

jobs=$(nproc)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
presets=${CHATD_TEST_PRESETS:-dev asan}
# The ASan build runs every end-to-end suite on SQLite; the dev build then
# runs them on PostgreSQL only, so that no suite runs twice on one store.
dev_sqlite=ON
case " $presets " in *" asan "*) dev_sqlite=OFF ;; esac
for preset in $presets; do
  echo "== $preset: build"
  if [ "$preset" = dev ]; then
    cmake --preset dev -DCHATD_E2E_SQLITE=$dev_sqlite >/dev/null
  else
    cmake --preset "$preset" >/dev/null
  fi
  cmake --build --preset "$preset"
  echo "== $preset: test"
  ctest --preset "$preset" -j "$jobs"
done
if [ "${CHATD_SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh
fi
