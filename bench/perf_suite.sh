#!/usr/bin/env bash
# The performance set of issue 13: the same loads against the floor
# (bench/floor: chatd's HTTP shape with nothing behind it), chatd with its
# group commit, and chatd with --commit-mode per-chunk (the seed's write
# path), in one run. The targets alternate within each repetition (this
# machine's speed drifts; alternating spreads the drift over all of them).
# bench/summarize_perf.mjs then prints one table per workload: the median of
# each figure per target, the range over the runs, and the ratio to the floor;
# unless --no-docs, it also replaces the generated section of
# docs/benchmarks.md with those tables and the commands that made them.
#
# Usage:
#   bench/perf_suite.sh [--repeat K] [--out DIR] [--postgres] [--quick] [--no-docs]
#
# --repeat K   runs per target and workload (3 by default)
# --postgres   adds chatd with group commit on PostgreSQL (the tests'
#              throw-away cluster) as a target
# --quick      the first workload once per target, and no docs: a check of the
#              tooling, not a measurement
# Results: DIR/results.jsonl (one RESULT line per run), DIR/summary.md.
set -euo pipefail

repeat=3
out=
quick=0
docs=1
postgres=0
while [ $# -gt 0 ]; do
  case "$1" in
    --repeat) repeat=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --postgres) postgres=1; shift ;;
    --quick) quick=1; repeat=1; docs=0; shift ;;
    --no-docs) docs=0; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "perf_suite: unknown option $1" >&2; exit 2 ;;
  esac
done

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
[ -n "$out" ] || out=$(mktemp -d "${TMPDIR:-/tmp}/chatd-perf.XXXXXX")
mkdir -p "$out"
results="$out/results.jsonl"
: >"$results"

# Build once; every run below uses these binaries.
if [ ! -f build/release/build.ninja ]; then cmake --preset release >/dev/null; fi
cmake --build --preset release --target chatd chatd_load chatd_floor >"$out/build.log" 2>&1 ||
  { tail -n 20 "$out/build.log" >&2; exit 1; }

# name|run_load.sh arguments|targets (floor, group, per-chunk, pg)
workloads=(
  "200 streams x 100 tokens at 50/s, 5 answers each, starts spread over 2 s, sent then streamed; 5,000 idle session streams before|--sessions 200 --rate 50 --tokens 100 --waves 5 --ramp-s 2 --read-elsewhere --warmup-s 1 --idle-streams 5000|floor group per-chunk pg"
  # The idle streams above open all at once: their RSS holds what 5,000
  # requests in flight at one moment left behind. Opened as clients arrive,
  # it is what a parked stream itself costs.
  "5,000 idle session streams opened 100 at a time, then 10 streams x 20 tokens|--sessions 10 --rate 50 --tokens 20 --idle-streams 5000 --idle-batch 100|floor group"
)
if [ "$quick" = 0 ]; then
  # Per-chunk cannot keep up with 50,000 tokens/s here (one commit per
  # token): it is left out of this one.
  workloads+=(
    "1000 streams x 500 tokens at 50/s|--sessions 1000 --rate 50 --tokens 500 --timeout-s 150|floor group pg"
  )
fi

target_args() {
  case "$1" in
    floor) echo "--target floor" ;;
    group) echo "--target chatd --mode group" ;;
    per-chunk) echo "--target chatd --mode per-chunk" ;;
    pg) echo "--target chatd --mode group --db postgres" ;;
  esac
}

commands=()
failed=0
for w in "${workloads[@]}"; do
  IFS='|' read -r name args targets <<<"$w"
  for t in $targets; do
    if [ "$t" = pg ] && [ "$postgres" = 0 ]; then continue; fi
    commands+=("bench/run_load.sh $(target_args "$t") $args")
  done
  for i in $(seq 1 "$repeat"); do
    for t in $targets; do
      if [ "$t" = pg ] && [ "$postgres" = 0 ]; then continue; fi
      echo "== $name: $t, run $i of $repeat" >&2
      # shellcheck disable=SC2046,SC2086 # the arguments are words
      if ! bench/run_load.sh --no-build $(target_args "$t") --label "$name" $args \
          >"$out/run.log" 2>&1; then
        echo "perf_suite: a run failed:" >&2
        tail -n 30 "$out/run.log" >&2
        failed=1
      fi
      sed -n 's/^RESULT //p' "$out/run.log" >>"$results"
    done
  done
done

printf '%s\n' "${commands[@]}" >"$out/commands.txt"
summary_args=("$results" --commands "$out/commands.txt" --repeat "$repeat")
if [ "$docs" = 1 ]; then summary_args+=(--docs docs/benchmarks.md); fi
node bench/summarize_perf.mjs "${summary_args[@]}" | tee "$out/summary.md"
echo "perf_suite: results in $out" >&2
exit "$failed"
