#!/usr/bin/env bash
# One load run (DESIGN §5): builds the release binaries if needed, starts chatd
# with stamped simulated tokens in a fresh data directory (and, with --db
# postgres, a fresh PostgreSQL 15 cluster), runs chatd_load against it, stops
# chatd with SIGTERM, reads its persister line and prints the results:
# chatd_load's table, then one line of JSON with commits added.
#
# Usage:
#   bench/run_load.sh --mode group|per-chunk --sessions N --rate R --tokens L
#                     [--db sqlite|postgres] [--warmup-s S] [--timeout-s T] [--json OUT]
#                     [--label TEXT] [--keep-data] [--no-verify-content] [--timeline]
#                     [--no-build] [--stop-timeout-s S]
#                     [-- extra chatd options, e.g. --commit-interval-ms 0]
# Example:
#   bench/run_load.sh --mode group --sessions 1000 --rate 50 --tokens 500
set -euo pipefail

mode=group
db=sqlite
sessions=100
rate=50
tokens=500
warmup=2
timeout=170
stop_timeout=120
json_out=
label=
keep=0
build=1
load_extra=()
chatd_extra=()

usage() { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --mode) mode=$2; shift 2 ;;
    --db) db=$2; shift 2 ;;
    --sessions) sessions=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --tokens) tokens=$2; shift 2 ;;
    --warmup-s) warmup=$2; shift 2 ;;
    --timeout-s) timeout=$2; shift 2 ;;
    --stop-timeout-s) stop_timeout=$2; shift 2 ;;
    --json) json_out=$2; shift 2 ;;
    --label) label=$2; shift 2 ;;
    --keep-data) keep=1; shift ;;
    --no-build) build=0; shift ;;
    --no-verify-content) load_extra+=(--no-verify-content); shift ;;
    --timeline) load_extra+=(--timeline); shift ;;
    -h|--help) usage; exit 0 ;;
    --) shift; chatd_extra=("$@"); break ;;
    *) echo "run_load: unknown option $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$mode" in group|per-chunk) ;; *) echo "run_load: --mode is group or per-chunk" >&2; exit 2 ;; esac
case "$db" in sqlite|postgres) ;; *) echo "run_load: --db is sqlite or postgres" >&2; exit 2 ;; esac
[ -n "$label" ] || label="$db $mode N=$sessions L=$tokens R=$rate"

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=build/release/bin

# Build (a no-op when up to date; --no-build benchmarks the binaries as they
# are, e.g. while src/ is being edited).
if [ "$build" = 1 ] && [ ! -f build/release/build.ninja ]; then
  cmake --preset release >/dev/null
fi
if [ "$build" = 1 ] && ! cmake --build --preset release --target chatd chatd_load >"${TMPDIR:-/tmp}/chatd-bench-build.log" 2>&1; then
  echo "run_load: the release build failed:" >&2
  grep -E -m 20 'error|FAILED' "${TMPDIR:-/tmp}/chatd-bench-build.log" >&2 || tail -n 20 "${TMPDIR:-/tmp}/chatd-bench-build.log" >&2
  exit 1
fi
if [ ! -x "$bin/chatd" ] || [ ! -x "$bin/chatd_load" ]; then
  echo "run_load: $bin/chatd or $bin/chatd_load is missing" >&2
  exit 1
fi
# Which source the binary was built from (approximately, when src/ is dirty).
git_head=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git_dirty=false
if [ -n "$(git status --porcelain -- src 2>/dev/null)" ]; then git_dirty=true; fi

# One socket per stream on each side.
hard=$(ulimit -Hn)
want=65536
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then want=$hard; fi
ulimit -n "$want"

# The load generator is one user with every stream: the per-user limits are lifted.
work=$(mktemp -d "${TMPDIR:-/tmp}/chatd-bench.XXXXXX")
chatd_pid=
cleanup() {
  if [ -n "$chatd_pid" ] && kill -0 "$chatd_pid" 2>/dev/null; then kill -KILL "$chatd_pid" 2>/dev/null || true; fi
  if [ "$db" = postgres ]; then bash tests/support/pg_cluster.sh stop "$work/pg" >/dev/null || true; fi
  if [ "$keep" = 1 ]; then echo "run_load: data kept in $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# PostgreSQL: the tests' throw-away cluster (PostgreSQL's defaults: fsync and
# synchronous_commit on), one fresh database.
db_args=()
db_pid_args=()
if [ "$db" = postgres ]; then
  bash tests/support/pg_cluster.sh start "$work/pg" >/dev/null
  conninfo="$(cat "$work/pg/conninfo")"
  psql "$conninfo" -qAt -c 'CREATE DATABASE chatd_bench' >/dev/null
  # The new database's pages are flushed now, not by the checkpointer in the
  # middle of the measurement.
  psql "$conninfo" -qAt -c 'CHECKPOINT' >/dev/null
  db_args=(--db "${conninfo/dbname=postgres/dbname=chatd_bench}")
  postmaster=$(head -n 1 "$(cat "$work/pg/datadir")/data/postmaster.pid")
  db_pid_args=(--db-pid "$postmaster")
fi

"$bin/chatd" --port 0 --data-dir "$work/data" "${db_args[@]}" \
  --sim-tokens-per-second "$rate" --sim-min-tokens "$tokens" --sim-max-tokens "$tokens" \
  --sim-stamp-tokens --commit-mode "$mode" \
  --max-generations-per-user 1000000 --max-live-generations 1000000 \
  --max-streams-per-user 1000000 --rate-limit-rps 0 "${chatd_extra[@]}" \
  >"$work/chatd.out" 2>"$work/chatd.err" &
chatd_pid=$!

url=
for _ in $(seq 1 200); do
  url=$(sed -n 's/^chatd listening on \(http:[^ ]*\).*/\1/p' "$work/chatd.out" | head -n1)
  [ -n "$url" ] && break
  if ! kill -0 "$chatd_pid" 2>/dev/null; then break; fi
  sleep 0.05
done
if [ -z "$url" ]; then
  echo "run_load: chatd did not start:" >&2
  cat "$work/chatd.err" >&2
  exit 1
fi

load_rc=0
wal_lsn() { psql "$conninfo" -qAt -c 'SELECT pg_current_wal_lsn()'; }
if [ "$db" = postgres ]; then wal_start=$(wal_lsn); fi
"$bin/chatd_load" --url "$url" --sessions "$sessions" --tokens "$tokens" --rate "$rate" \
  --chatd-pid "$chatd_pid" "${db_pid_args[@]}" --warmup-s "$warmup" --timeout-s "$timeout" \
  --json "$work/load.json" --label "$label" "${load_extra[@]}" || load_rc=$?

if [ "$db" = postgres ]; then
  wal_bytes=$(psql "$conninfo" -qAt -c "SELECT pg_wal_lsn_diff('$(wal_lsn)', '$wal_start')")
else
  wal_bytes=null
fi

# SIGTERM ends live generations (none, if every stream completed) and drains
# the persister; then chatd prints its persister totals.
stop_start=$(date +%s.%N)
kill -TERM "$chatd_pid"
stopped=0
for _ in $(seq 1 $((stop_timeout * 10))); do
  if ! kill -0 "$chatd_pid" 2>/dev/null; then stopped=1; break; fi
  sleep 0.1
done
if [ "$stopped" = 0 ]; then
  echo "run_load: chatd did not stop within ${stop_timeout}s of SIGTERM; killing it" >&2
  kill -KILL "$chatd_pid" 2>/dev/null || true
fi
wait "$chatd_pid" 2>/dev/null || true
stop_s=$(awk -v a="$stop_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
chatd_pid=

line=$(grep -o 'stopped; persister: .*' "$work/chatd.err" | tail -n1 || true)
num() { printf '%s\n' "$line" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
commits=$(num commits); failed=$(num failed_commits); writes=$(num writes); pbytes=$(num bytes)
if [ "$db" = postgres ]; then
  db_bytes=$(psql "$conninfo" -qAt -c "SELECT pg_database_size('chatd_bench')" 2>/dev/null || echo 0)
else
  db_bytes=$(du -sb "$work/data" 2>/dev/null | cut -f1 || echo 0)
fi
warnings=$(grep -c -E '\[(warn|warning|error|critical)\]' "$work/chatd.err" || true)

if [ ! -s "$work/load.json" ]; then
  echo "run_load: chatd_load wrote no results (exit $load_rc)" >&2
  tail -n 20 "$work/chatd.err" >&2
  exit 1
fi

field() { sed -n "s/^ *\"$1\": *\([^,]*\),\{0,1\}$/\1/p" "$work/load.json"; }
gen_s=$(field gen_duration_s)
tokens_total=$(field tokens_total)
if [ -n "$commits" ]; then
  # When streams timed out, the persister went on committing their backlog
  # until chatd stopped: count that time too.
  span=$gen_s
  if grep -q '"timed_out": true' "$work/load.json"; then
    span=$(awk -v a="$gen_s" -v b="$stop_s" 'BEGIN { printf "%.3f", a + b }')
  fi
  commits_per_s=$(awk -v c="$commits" -v s="$span" 'BEGIN { printf "%.1f", (s > 0 ? c / s : 0) }')
  tokens_per_commit=$(awk -v c="$commits" -v t="$tokens_total" 'BEGIN { printf "%.2f", (c > 0 ? t / c : 0) }')
  extra=$(printf '"db": "%s", "mode": "%s", "commits": %s, "failed_commits": %s, "persister_writes": %s, "persister_bytes": %s, "commits_per_s": %s, "commits_span_s": %s, "tokens_per_commit": %s, "chatd_stop_s": %s, "data_dir_bytes": %s, "db_wal_bytes": %s, "chatd_warnings": %s, "load_exit": %s, "git_head": "%s", "git_dirty": %s' \
    "$db" "$mode" "$commits" "$failed" "$writes" "$pbytes" "$commits_per_s" "$span" "$tokens_per_commit" "$stop_s" "$db_bytes" "$wal_bytes" "$warnings" "$load_rc" "$git_head" "$git_dirty")
else
  echo "run_load: no persister line in chatd's log (was it killed?)" >&2
  extra=$(printf '"db": "%s", "mode": "%s", "commits": null, "commits_per_s": null, "chatd_stop_s": %s, "data_dir_bytes": %s, "db_wal_bytes": %s, "chatd_warnings": %s, "load_exit": %s, "git_head": "%s", "git_dirty": %s' \
    "$db" "$mode" "$stop_s" "$db_bytes" "$wal_bytes" "$warnings" "$load_rc" "$git_head" "$git_dirty")
fi
if [ "$warnings" != 0 ]; then
  echo "run_load: chatd logged $warnings warnings/errors; first ones:" >&2
  grep -E '\[(warn|warning|error|critical)\]' "$work/chatd.err" | head -n 5 >&2
fi

# chatd_load's JSON has one key per line and ends with "}".
merged=$(sed '$d' "$work/load.json" | sed '$s/$/,/'; printf '  %s\n}\n' "$extra")
printf '  %-34s %s commits, %s/s, %s tokens/commit (chatd stopped in %s s)\n' \
  "commits (persister)" "${commits:-?}" "${commits_per_s:-?}" "${tokens_per_commit:-?}" "$stop_s"
if [ "$db" = postgres ]; then
  printf '  %-34s %s B, %s B/token\n' "WAL written (pg_current_wal_lsn)" "$wal_bytes" \
    "$(awk -v w="$wal_bytes" -v t="$tokens_total" 'BEGIN { printf "%.1f", (t > 0 ? w / t : 0) }')"
fi
compact=$(printf '%s\n' "$merged" | tr -d '\n' | sed 's/  */ /g')
echo "RESULT $compact"
if [ -n "$json_out" ]; then printf '%s\n' "$merged" >"$json_out"; fi
exit "$load_rc"
