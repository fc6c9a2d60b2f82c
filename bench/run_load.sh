#!/usr/bin/env bash
# One load run (DESIGN §5): builds the release binaries if needed, starts chatd
# with stamped simulated tokens in a fresh data directory (and, with --db
# postgres, a fresh PostgreSQL 15 cluster), runs chatd_load against it, stops
# chatd with SIGTERM, reads its persister line and prints the results:
# chatd_load's table, then one line of JSON with commits added.
#
# With --nodes K (PostgreSQL only) it starts K chatd nodes on the one database
# (`--node-id bench-0` ... `bench-<K-1>`, each with its own data directory and
# port), gives chatd_load all of them and stops all of them; commits, notices
# and tail reads are then the sums over the nodes, and `node_counters` has
# each node's. --read-elsewhere makes chatd_load read every answer on the node
# after the one that generates it (see bench/load/load_gen.cpp); with K = 1 it
# is the same client flow on one node, the baseline.
#
# --target floor runs the same load against bench/floor's chatd_floor instead
# of chatd: chatd's HTTP shape with no store behind it, the floor that chatd's
# CPU per token is compared with (one node; --mode, --db and chatd options do
# not apply; commits are null).
#
# Usage:
#   bench/run_load.sh [--target chatd|floor] --mode group|per-chunk --sessions N --rate R --tokens L
#                     [--db sqlite|postgres] [--nodes K] [--read-elsewhere] [--waves W] [--ramp-s S]
#                     [--idle-streams M] [--idle-batch B] [--resumes K]
#                     [--warmup-s S] [--timeout-s T] [--json OUT]
#                     [--label TEXT] [--keep-data] [--no-verify-content] [--timeline]
#                     [--no-build] [--stop-timeout-s S]
#                     [-- extra chatd options (every node), e.g. --commit-interval-ms 0]
# Examples:
#   bench/run_load.sh --mode group --sessions 1000 --rate 50 --tokens 500
#   bench/run_load.sh --db postgres --nodes 3 --read-elsewhere --sessions 200 --rate 50 --tokens 300
set -euo pipefail

target=chatd
mode=group
db=sqlite
nodes=1
sessions=100
rate=50
tokens=500
waves=1
warmup=2
timeout=170
stop_timeout=120
json_out=
label=
keep=0
build=1
load_extra=()
chatd_extra=()

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --target) target=$2; shift 2 ;;
    --mode) mode=$2; shift 2 ;;
    --db) db=$2; shift 2 ;;
    --nodes) nodes=$2; shift 2 ;;
    --read-elsewhere) load_extra+=(--read-elsewhere); shift ;;
    --waves) load_extra+=(--waves "$2"); waves=$2; shift 2 ;;
    --ramp-s) load_extra+=(--ramp-s "$2"); shift 2 ;;
    --idle-streams) load_extra+=(--idle-streams "$2"); shift 2 ;;
    --idle-batch) load_extra+=(--idle-batch "$2"); shift 2 ;;
    --resumes) load_extra+=(--resumes "$2"); shift 2 ;;
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
case "$target" in chatd|floor) ;; *) echo "run_load: --target is chatd or floor" >&2; exit 2 ;; esac
if [ "$target" = floor ]; then
  if [ "$nodes" != 1 ] || [ "$db" != sqlite ]; then
    echo "run_load: --target floor is one node with no store (no --nodes, no --db)" >&2
    exit 2
  fi
  mode=floor db=none
fi
case "$target:$mode" in floor:floor|chatd:group|chatd:per-chunk) ;; *) echo "run_load: --mode is group or per-chunk" >&2; exit 2 ;; esac
case "$db" in none|sqlite|postgres) ;; *) echo "run_load: --db is sqlite or postgres" >&2; exit 2 ;; esac
case "$nodes" in ''|*[!0-9]*|0) echo "run_load: --nodes is a positive number" >&2; exit 2 ;; esac
if [ "$nodes" -gt 1 ] && [ "$db" != postgres ]; then
  echo "run_load: --nodes $nodes needs --db postgres (a SQLite file belongs to one chatd)" >&2
  exit 2
fi
if [ -z "$label" ]; then
  label="$db $mode N=$sessions L=$tokens R=$rate"
  if [ "$waves" != 1 ]; then label="$label W=$waves"; fi
  if [ "$nodes" -gt 1 ]; then label="$label nodes=$nodes"; fi
  case " ${load_extra[*]-} " in *" --read-elsewhere "*) label="$label read-elsewhere" ;; esac
fi

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=build/release/bin

# Build (a no-op when up to date; --no-build benchmarks the binaries as they
# are, e.g. while src/ is being edited).
if [ "$build" = 1 ] && [ ! -f build/release/build.ninja ]; then
  cmake --preset release >/dev/null
fi
if [ "$build" = 1 ] && ! cmake --build --preset release --target chatd chatd_load chatd_floor >"${TMPDIR:-/tmp}/chatd-bench-build.log" 2>&1; then
  echo "run_load: the release build failed:" >&2
  grep -E -m 20 'error|FAILED' "${TMPDIR:-/tmp}/chatd-bench-build.log" >&2 || tail -n 20 "${TMPDIR:-/tmp}/chatd-bench-build.log" >&2
  exit 1
fi
if [ ! -x "$bin/chatd" ] || [ ! -x "$bin/chatd_load" ] || [ ! -x "$bin/chatd_floor" ]; then
  echo "run_load: $bin/chatd, $bin/chatd_load or $bin/chatd_floor is missing" >&2
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
chatd_pids=()  # node k's process, while it may run
cleanup() {
  local pid
  for pid in "${chatd_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  done
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

# Node k lives in $work/node<k>: its data directory (chatd.lock, and the
# SQLite file on sqlite) and its logs.
start_node() {
  local k=$1
  mkdir -p "$work/node$k"
  if [ "$target" = floor ]; then
    "$bin/chatd_floor" --port 0 --rate "$rate" --tokens "$tokens" \
      >"$work/node$k/chatd.out" 2>"$work/node$k/chatd.err" &
    chatd_pids+=("$!")
    return
  fi
  "$bin/chatd" --port 0 --data-dir "$work/node$k/data" --node-id "bench-$k" "${db_args[@]}" \
    --sim-tokens-per-second "$rate" --sim-min-tokens "$tokens" --sim-max-tokens "$tokens" \
    --sim-stamp-tokens --commit-mode "$mode" \
    --max-generations-per-user 1000000 --max-live-generations 1000000 \
    --max-streams-per-user 1000000 --rate-limit-rps 0 "${chatd_extra[@]}" \
    >"$work/node$k/chatd.out" 2>"$work/node$k/chatd.err" &
  chatd_pids+=("$!")
}

# Prints node k's URL once it listens; fails when it does not start.
node_url() {
  local k=$1 pid=${chatd_pids[$1]} url=
  for _ in $(seq 1 200); do
    url=$(sed -n 's/^\(chatd\|floor\) listening on \(http:[^ ]*\).*/\2/p' "$work/node$k/chatd.out" | head -n1)
    [ -n "$url" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.05
  done
  if [ -z "$url" ]; then
    echo "run_load: chatd node $k did not start:" >&2
    cat "$work/node$k/chatd.err" >&2
    return 1
  fi
  printf '%s\n' "$url"
}

# One after the other: the first node creates the tables, the others find
# them, and no two run the migrations at once.
urls=()
node_args=()
for k in $(seq 0 $((nodes - 1))); do
  start_node "$k"
  url=$(node_url "$k") || exit 1
  urls+=("$url")
  node_args+=(--url "${urls[$k]}" --chatd-pid "${chatd_pids[$k]}")
done

load_rc=0
wal_lsn() { psql "$conninfo" -qAt -c 'SELECT pg_current_wal_lsn()'; }
if [ "$db" = postgres ]; then wal_start=$(wal_lsn); fi
"$bin/chatd_load" "${node_args[@]}" --sessions "$sessions" --tokens "$tokens" --rate "$rate" \
  "${db_pid_args[@]}" --warmup-s "$warmup" --timeout-s "$timeout" \
  --json "$work/load.json" --label "$label" "${load_extra[@]}" || load_rc=$?

if [ "$db" = postgres ]; then
  wal_bytes=$(psql "$conninfo" -qAt -c "SELECT pg_wal_lsn_diff('$(wal_lsn)', '$wal_start')")
else
  wal_bytes=null
fi

# SIGTERM ends live generations (none, if every stream completed) and drains
# the persister; then chatd prints its persister totals. All nodes stop at
# once, as a deploy would stop them.
stop_start=$(date +%s.%N)
for pid in "${chatd_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
running() {
  local pid
  for pid in "${chatd_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
  done
}
for _ in $(seq 1 $((stop_timeout * 10))); do
  [ -z "$(running)" ] && break
  sleep 0.1
done
for pid in $(running); do
  echo "run_load: chatd (pid $pid) did not stop within ${stop_timeout}s of SIGTERM; killing it" >&2
  kill -KILL "$pid" 2>/dev/null || true
done
for pid in "${chatd_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
stop_s=$(awk -v a="$stop_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
chatd_pids=()

if [ "$db" = postgres ]; then
  db_bytes=$(psql "$conninfo" -qAt -c "SELECT pg_database_size('chatd_bench')" 2>/dev/null || echo 0)
else
  db_bytes=$(du -sb "$work/node0/data" 2>/dev/null | cut -f1 || echo 0)
fi
warn_pattern='\[(warn|warning|error|critical)\]'

if [ ! -s "$work/load.json" ]; then
  echo "run_load: chatd_load wrote no results (exit $load_rc)" >&2
  for k in $(seq 0 $((nodes - 1))); do tail -n 20 "$work/node$k/chatd.err" >&2; done
  exit 1
fi

field() { sed -n "s/^ *\"$1\": *\([^,]*\),\{0,1\}$/\1/p" "$work/load.json"; }
gen_s=$(field gen_duration_s)
tokens_total=$(field tokens_total)
# When streams timed out, the persister went on committing their backlog
# until chatd stopped: count that time too.
span=$gen_s
if grep -q '"timed_out": true' "$work/load.json"; then
  span=$(awk -v a="$gen_s" -v b="$stop_s" 'BEGIN { printf "%.3f", a + b }')
fi
per_s() { awk -v c="$1" -v s="$span" 'BEGIN { printf "%.1f", (s > 0 ? c / s : 0) }'; }

# Each node's `stopped; persister: commits=N failed_commits=N writes=N bytes=N;
# feeds: notices=N tail_reads=N` line; the sums over the nodes stay empty
# when a node has none (it was killed).
counter() { printf '%s\n' "$1" | sed -n "s/.* $2=\([0-9]*\).*/\1/p"; }
add() { if [ -n "$1" ] && [ -n "$2" ]; then echo $(($1 + $2)); fi; }
commits=0 failed=0 writes=0 pbytes=0 notices=0 tail_reads=0 warnings=0
node_counters=
node_rows=
for k in $(seq 0 $((nodes - 1))); do
  err="$work/node$k/chatd.err"
  line=$(grep -o 'stopped; persister: .*' "$err" | tail -n1 || true)
  c=$(counter "$line" commits); f=$(counter "$line" failed_commits)
  w=$(counter "$line" writes); b=$(counter "$line" bytes)
  n=$(counter "$line" notices); t=$(counter "$line" tail_reads)
  node_warnings=$(grep -c -E "$warn_pattern" "$err" || true)
  if [ -z "$c" ] && [ "$target" = chatd ]; then echo "run_load: no persister line in node $k's log (was it killed?)" >&2; fi
  commits=$(add "$commits" "$c"); failed=$(add "$failed" "$f")
  writes=$(add "$writes" "$w"); pbytes=$(add "$pbytes" "$b")
  notices=$(add "$notices" "$n"); tail_reads=$(add "$tail_reads" "$t")
  warnings=$((warnings + node_warnings))
  c_per_s=null n_per_s=null
  if [ -n "$c" ]; then c_per_s=$(per_s "$c"); fi
  if [ -n "$n" ]; then n_per_s=$(per_s "$n"); fi
  node_counters="$node_counters${node_counters:+, }$(printf '{"node": "bench-%s", "commits": %s, "failed_commits": %s, "persister_writes": %s, "persister_bytes": %s, "commits_per_s": %s, "notices": %s, "notices_per_s": %s, "tail_reads": %s, "chatd_warnings": %s}' \
    "$k" "${c:-null}" "${f:-null}" "${w:-null}" "${b:-null}" "$c_per_s" "${n:-null}" "$n_per_s" "${t:-null}" "$node_warnings")"
  node_rows="$node_rows$(printf '    %-32s %s commits (%s/s), %s notices (%s/s), %s tail reads' \
    "bench-$k" "${c:-?}" "$c_per_s" "${n:-?}" "$n_per_s" "${t:-?}")"$'\n'
  if [ "$node_warnings" != 0 ]; then
    echo "run_load: chatd node $k logged $node_warnings warnings/errors; first ones:" >&2
    grep -E "$warn_pattern" "$err" | head -n 5 >&2
  fi
done

common=$(printf '"chatd_stop_s": %s, "data_dir_bytes": %s, "db_wal_bytes": %s, "chatd_warnings": %s, "load_exit": %s, "git_head": "%s", "git_dirty": %s, "node_counters": [%s]' \
  "$stop_s" "$db_bytes" "$wal_bytes" "$warnings" "$load_rc" "$git_head" "$git_dirty" "$node_counters")
if [ -n "$commits" ]; then
  commits_per_s=$(per_s "$commits")
  tokens_per_commit=$(awk -v c="$commits" -v t="$tokens_total" 'BEGIN { printf "%.2f", (c > 0 ? t / c : 0) }')
  notices_per_s=null
  if [ -n "$notices" ]; then notices_per_s=$(per_s "$notices"); fi
  extra=$(printf '"db": "%s", "mode": "%s", "commits": %s, "failed_commits": %s, "persister_writes": %s, "persister_bytes": %s, "commits_per_s": %s, "commits_span_s": %s, "tokens_per_commit": %s, "notices": %s, "notices_per_s": %s, "tail_reads": %s, %s' \
    "$db" "$mode" "$commits" "$failed" "$writes" "$pbytes" "$commits_per_s" "$span" "$tokens_per_commit" "${notices:-null}" "$notices_per_s" "${tail_reads:-null}" "$common")
else
  extra=$(printf '"db": "%s", "mode": "%s", "commits": null, "commits_per_s": null, "notices": null, "notices_per_s": null, "tail_reads": null, %s' \
    "$db" "$mode" "$common")
fi

# chatd_load's JSON has one key per line and ends with "}".
merged=$(sed '$d' "$work/load.json" | sed '$s/$/,/'; printf '  %s\n}\n' "$extra")
all=
if [ "$nodes" -gt 1 ]; then all=", all nodes"; fi
printf '  %-34s %s commits, %s/s, %s tokens/commit (chatd stopped in %s s)\n' \
  "commits (persister$all)" "${commits:-?}" "${commits_per_s:-?}" "${tokens_per_commit:-?}" "$stop_s"
printf '  %-34s %s notices, %s/s, %s tail reads\n' \
  "notices (feeds$all)" "${notices:-?}" "${notices_per_s:-?}" "${tail_reads:-?}"
if [ "$nodes" -gt 1 ]; then printf '%s' "$node_rows"; fi
if [ "$db" = postgres ]; then
  printf '  %-34s %s B, %s B/token\n' "WAL written (pg_current_wal_lsn)" "$wal_bytes" \
    "$(awk -v w="$wal_bytes" -v t="$tokens_total" 'BEGIN { printf "%.1f", (t > 0 ? w / t : 0) }')"
fi
compact=$(printf '%s\n' "$merged" | tr -d '\n' | sed 's/  */ /g')
echo "RESULT $compact"
if [ -n "$json_out" ]; then printf '%s\n' "$merged" >"$json_out"; fi
exit "$load_rc"
