#!/usr/bin/env bash
# Tries chatd with several nodes: starts a throw-away PostgreSQL 15 (the
# tests' cluster script: 127.0.0.1 only, trust authentication, data in /tmp)
# and three chatd nodes on one database, on http://127.0.0.1:8081, :8082 and
# :8083, each with its own --node-id and data directory. Send on one node,
# stream or poll on another, kill one mid-answer (`kill -9 PID`, or
# `kill -STOP PID` for longer than its lease; the pids are printed) and watch
# another take its answers over. Ctrl-C stops the nodes (each hands its
# answers over) and removes the database.
#   CHATD_BIN=path      run that binary instead of setting up and building one
#   CHATD_CLUSTER_DIR   where the nodes' data directories and logs go
#                       (default: a fresh /tmp/chatd-cluster.XXXXXX)
#   CHATD_BASE_PORT     the first node's port (default 8081)
# Extra arguments go to every node (see chatd --help), e.g. --lease-ms 3000.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CHATD_BIN:-}
if [ -z "$bin" ]; then
  bash scripts/setup.sh --postgres
  cmake --preset release >/dev/null
  cmake --build --preset release --target chatd
  bin=build/release/bin/chatd
fi
bin=$(realpath "$bin")
dir=${CHATD_CLUSTER_DIR:-$(mktemp -d /tmp/chatd-cluster.XXXXXX)}
mkdir -p "$dir"
base=${CHATD_BASE_PORT:-8081}

pids=()
stop_all() {
  trap - INT TERM EXIT
  echo
  echo "cluster: stopping the nodes"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  bash tests/support/pg_cluster.sh stop "$dir/pg" >/dev/null || true
  echo "cluster: stopped; logs kept in $dir"
}
trap 'stop_all; exit 0' INT TERM
trap stop_all EXIT

bash tests/support/pg_cluster.sh start "$dir/pg" >/dev/null
conninfo=$(cat "$dir/pg/conninfo")
psql "$conninfo" -v ON_ERROR_STOP=1 -qc 'CREATE DATABASE chatd'
db="$conninfo dbname=chatd"

for i in 1 2 3; do
  port=$((base + i - 1))
  mkdir -p "$dir/node-$i"
  "$bin" --port "$port" --node-id "node-$i" --data-dir "$dir/node-$i" --db "$db" "$@" \
    >"$dir/node-$i/stdout.log" 2>"$dir/node-$i/stderr.log" &
  pids+=($!)
  for _ in $(seq 1 100); do
    grep -q "chatd listening on" "$dir/node-$i/stdout.log" 2>/dev/null && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$dir/node-$i/stderr.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "cluster: node-$i on http://127.0.0.1:$port (pid ${pids[-1]}, log $dir/node-$i/stderr.log)"
done
echo "cluster: PostgreSQL: psql '$db'"
echo "cluster: Ctrl-C stops everything"
wait
