#!/usr/bin/env bash
# The same load against chatd on SQLite and on PostgreSQL, in one run: each
# workload is run --repeat times per store, the stores alternating (this
# machine's speed drifts; alternating spreads the drift over both), then
# bench/summarize_stores.mjs prints one Markdown table per workload with the
# median of each figure per store and the ratio PostgreSQL ÷ SQLite.
#
# Usage:
#   bench/compare_stores.sh [--repeat K] [--out DIR] [--quick]
#
# --quick runs only the 200-stream workload, once per store (a smoke test of
# the tooling, not a measurement). Results: DIR/results.jsonl (one RESULT line
# per run) and DIR/summary.md.
set -euo pipefail

repeat=3
out=
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quick) quick=1; repeat=1; shift ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare_stores: unknown option $1" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/chatd-compare.XXXXXX")
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"

# Build once; every run below uses these binaries.
if [ ! -f build/release/build.ninja ]; then cmake --preset release >/dev/null; fi
cmake --build --preset release --target chatd chatd_load >"$out/build.log" 2>&1 ||
  { tail -n 20 "$out/build.log" >&2; exit 1; }

# name|run_load.sh arguments|extra chatd arguments
workloads=(
  "200 streams x 50 tokens/s x 500|--sessions 200 --rate 50 --tokens 500|"
)
if [ "$quick" = 0 ]; then
  workloads+=(
    "1 stream x 200 tokens/s x 1000|--sessions 1 --rate 200 --tokens 1000 --warmup-s 0.5|"
    "200 streams x 50 tokens/s x 500, unpaced (--commit-interval-ms 0)|--sessions 200 --rate 50 --tokens 500|--commit-interval-ms 0"
    "1000 streams x 50 tokens/s x 500|--sessions 1000 --rate 50 --tokens 500 --timeout-s 150|"
  )
fi

failed=0
for w in "${workloads[@]}"; do
  IFS='|' read -r name args chatd_args <<<"$w"
  for i in $(seq 1 "$repeat"); do
    for db in sqlite postgres; do
      echo "== $name: $db, run $i of $repeat" >&2
      # shellcheck disable=SC2086 # the workload's arguments are words
      if ! bench/run_load.sh --no-build --db "$db" --label "$name" $args \
          ${chatd_args:+-- $chatd_args} >"$out/run.log" 2>&1; then
        echo "compare_stores: a run failed:" >&2
        tail -n 30 "$out/run.log" >&2
        failed=1
      fi
      sed -n 's/^RESULT //p' "$out/run.log" >>"$results"
    done
  done
done

node bench/summarize_stores.mjs "$results" | tee "$out/summary.md"
echo "compare_stores: results in $out" >&2
exit "$failed"
