#!/usr/bin/env bash
# Sets up, builds (release) and runs chatd: SQLite in ./data, the simulated
# model, on http://127.0.0.1:8080. Extra arguments go to chatd (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release --target chatd
exec build/release/bin/chatd --data-dir data "$@"
