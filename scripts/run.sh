#!/usr/bin/env bash
# Sets up, builds (release) and runs chatd: SQLite in ./data (or
# $CHATD_DATA_DIR, or --data-dir), the simulated model, on
# http://127.0.0.1:8080. Extra arguments go to chatd (see --help); they win
# over the CHATD_* environment variables.
#   CHATD_BIN=path   run that binary instead of setting up and building one
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CHATD_BIN:-}
if [ -z "$bin" ]; then
  bash scripts/setup.sh
  cmake --preset release >/dev/null
  cmake --build --preset release --target chatd
  bin=build/release/bin/chatd
fi
export CHATD_DATA_DIR=${CHATD_DATA_DIR:-data}
exec "$bin" "$@"
