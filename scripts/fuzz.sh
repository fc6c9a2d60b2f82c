#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz with clang-15 under ASan+UBSan
# into build/fuzz, then runs each for CHATD_FUZZ_SECONDS (default 60) on a copy
# of its seed corpus. Exits non-zero on any crash, leak, timeout, out-of-memory
# or UB report; the inputs that caused them stay in build/fuzz/artifacts/<target>/
# and the fuzzer's output in build/fuzz/logs/<target>/. See docs/fuzzing.md.
#
#   CHATD_FUZZ_SECONDS=60       run time per target (-max_total_time)
#   CHATD_FUZZ_PARALLEL=N       targets run at once (default: nproc)
#   CHATD_FUZZ_TARGETS="a b"    only these targets (default: every tests/fuzz/*_fuzz.cpp)
#   CHATD_FUZZ_CORPUS_DIR=dir   keep the grown corpus in dir/<target> across runs
#                               (default: a temporary copy of the seeds, deleted after)
#   CHATD_FUZZ_ARGS="..."       more libFuzzer flags, e.g. "-jobs=2 -workers=2"
#   CHATD_FUZZ_BUILD_JOBS=N     parallel compile jobs (default: nproc)
#   CHATD_FUZZ_CXX=clang++-15   the compiler
#
# `bash scripts/fuzz.sh --reproduce <target> <input>...` builds one target and
# runs it once on each input (a saved crash), with the same sanitizer options.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

seconds=${CHATD_FUZZ_SECONDS:-60}
build=$root/build/fuzz
compiler=${CHATD_FUZZ_CXX:-clang++-15}
if ! command -v "$compiler" >/dev/null 2>&1; then
  echo "fuzz: $compiler not found; install it with: bash scripts/setup.sh --tests" >&2
  exit 1
fi

reproduce=()
if [ "${1:-}" = "--reproduce" ]; then
  if [ $# -lt 3 ]; then
    echo "usage: bash scripts/fuzz.sh --reproduce <target> <input>..." >&2
    exit 2
  fi
  CHATD_FUZZ_TARGETS=$2
  shift 2
  for input in "$@"; do reproduce+=("$(cd "$(dirname "$input")" && pwd)/$(basename "$input")"); done
fi

if [ -n "${CHATD_FUZZ_TARGETS:-}" ]; then
  read -r -a targets <<<"$CHATD_FUZZ_TARGETS"
else
  targets=()
  for source in tests/fuzz/*_fuzz.cpp; do
    name=$(basename "$source" .cpp)
    targets+=("$name")
  done
fi

started=$(date +%s)
echo "== fuzz: build (${targets[*]})"
# Optimised but debuggable, and without NDEBUG so Boost's own asserts stay on.
cmake -S . -B "$build" -G Ninja \
  -DCMAKE_CXX_COMPILER="$compiler" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -gline-tables-only" \
  -DCHATD_FUZZ=ON -DCHATD_BUILD_TESTS=OFF -DCHATD_BUILD_BENCH=OFF -DCHATD_SANITIZE=OFF >/dev/null
cmake --build "$build" --target "${targets[@]}" -j "${CHATD_FUZZ_BUILD_JOBS:-$(nproc)}"
built=$(date +%s)

# Reports stop the process (libFuzzer then saves the input); leaks are findings.
# Debian's sanitizer runtime looks for llvm-symbolizer only in clang-15's own
# directory (package llvm-15): point it at one that exists, else at addr2line,
# so that stack traces have file and line.
symbolizer=$(command -v llvm-symbolizer-15 || command -v llvm-symbolizer || true)
if [ -n "$symbolizer" ]; then
  symbolize="external_symbolizer_path=$symbolizer"
else
  symbolize="allow_addr2line=1:external_symbolizer_path=$(command -v addr2line)"
fi
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:check_initialization_order=1:detect_stack_use_after_return=1:$symbolize
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1:report_error_type=1:$symbolize

if [ ${#reproduce[@]} -gt 0 ]; then
  exec "$build/bin/${targets[0]}" "${reproduce[@]}"
fi
echo "== fuzz: built in $((built - started)) s; running each target for $seconds s"

scratch=$(mktemp -d "${TMPDIR:-/tmp}/chatd-fuzz.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# One target's run; its summary line goes to $scratch/<target>.summary and
# its exit status says whether it found anything.
fuzz_one() {
  local target=$1
  local seeds=$root/tests/fuzz/corpus/$target corpus
  if [ -n "${CHATD_FUZZ_CORPUS_DIR:-}" ]; then
    mkdir -p "$CHATD_FUZZ_CORPUS_DIR"
    corpus=$(cd "$CHATD_FUZZ_CORPUS_DIR" && pwd)/$target
  else
    corpus=$scratch/corpus/$target
  fi
  mkdir -p "$corpus"
  # A copy: libFuzzer adds to and reduces the corpus it is given.
  if [ -d "$seeds" ]; then cp -n "$seeds"/* "$corpus"/ 2>/dev/null || true; fi
  chmod -R u+w "$corpus"
  local artifacts=$build/artifacts/$target
  local logs=$build/logs/$target
  mkdir -p "$artifacts"
  rm -rf "$logs" && mkdir -p "$logs"
  local args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048
              -artifact_prefix="$artifacts/" -print_final_stats=1)
  if [ -f "$root/tests/fuzz/$target.dict" ]; then args+=(-dict="$root/tests/fuzz/$target.dict"); fi
  # shellcheck disable=SC2206 # CHATD_FUZZ_ARGS is a list of flags
  args+=(${CHATD_FUZZ_ARGS:-})
  echo "== fuzz: $target"
  local before after status=0
  before=$(ls "$artifacts" | wc -l)
  # From the log directory: with -jobs, libFuzzer writes fuzz-<n>.log to the
  # current directory.
  (cd "$logs" && "$build/bin/$target" "${args[@]}" "$corpus" >"$logs/$target.log" 2>&1) || status=$?
  after=$(ls "$artifacts" | wc -l)
  # Belt and braces: any sanitizer report or new artefact fails the run, even
  # if the exit status somehow did not.
  if grep -qE '==[0-9]+== ?ERROR|SUMMARY: [A-Za-z]+Sanitizer|runtime error:' "$logs"/*.log ||
     [ "$after" -gt "$before" ]; then
    if [ "$status" -eq 0 ]; then status=1; fi
  fi
  local runs coverage files
  runs=$(grep -ho 'stat::number_of_executed_units: *[0-9]*' "$logs"/*.log | awk '{n += $2} END {print n + 0}' || true)
  coverage=$(grep -ho 'cov: [0-9]* ft: [0-9]*' "$logs/$target.log" | tail -n 1 || true)
  files=$(ls "$corpus" | wc -l)
  if [ "$status" -eq 0 ]; then
    echo "fuzz: $target ok: $runs runs in ${seconds}s, ${coverage:-cov: ?}, corpus $files files" >"$scratch/$target.summary"
    return 0
  fi
  echo "fuzz: $target FAILED (exit $status): log $logs/$target.log, inputs in $artifacts/" >"$scratch/$target.summary"
  {
    echo "---- $target: end of log"
    tail -n 60 "$logs/$target.log"
    echo "----"
  } >&2
  return 1
}

# The targets are single-threaded: run as many at once as there are cores
# (CHATD_FUZZ_PARALLEL), each for its whole time.
parallel=${CHATD_FUZZ_PARALLEL:-$(nproc)}
failed=()
pending=("${targets[@]}")
while [ ${#pending[@]} -gt 0 ]; do
  batch=("${pending[@]:0:$parallel}")
  pending=("${pending[@]:$parallel}")
  pids=()
  for target in "${batch[@]}"; do
    fuzz_one "$target" &
    pids+=($!)
  done
  for i in "${!batch[@]}"; do
    wait "${pids[$i]}" || failed+=("${batch[$i]}")
  done
done
summaries=()
for target in "${targets[@]}"; do summaries+=("$(cat "$scratch/$target.summary")"); done

echo "== fuzz: done in $(($(date +%s) - started)) s"
for line in "${summaries[@]}"; do echo "$line"; done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]}; reproduce with build/fuzz/bin/<target> <input> (docs/fuzzing.md)" >&2
  exit 1
fi
