#!/bin/bash
# Builds the fuzz build (clang, libFuzzer, AddressSanitizer, UBSan) and runs
# every harness tests/fuzz/*_fuzz.cc for a fixed time, two at a time. Fails
# when any harness finds a crash, a leak, a sanitizer report, a timeout or a
# broken property; prints executions, exec/s and coverage per harness.
#
#   tests/fuzz/run.sh            30 s per harness, random seeds, kept corpus
#   tests/fuzz/run.sh 600        a longer run: 10 minutes per harness
#   tests/fuzz/run.sh --fixed 60 what tests/run.sh (and so CI) runs: seed 1,
#                                a fresh corpus from the seeds only and a
#                                fixed number of inputs per harness (about
#                                25 s of work on a quiet 2-core machine),
#                                cut at 60 s. The same inputs every time, on
#                                any machine (a slow one tries a prefix), so
#                                CI finds nothing a local run did not find
#                                first. New bugs are the open-ended modes' job.
#
# Seeds are the recorded fixtures plus tests/fuzz/regressions/HARNESS/, the
# inputs that once broke a harness (every run replays them first).
#
# NETVIGIL_FUZZ_BUILD_DIR picks the build folder (default build-fuzz),
# NETVIGIL_FUZZ_JOBS how many harnesses run at once (default 2). The corpus
# each harness grows is kept in BUILD/fuzz/corpus and reused by the next run;
# what a failing harness found is in BUILD/fuzz/artifacts, its log in
# BUILD/fuzz/logs. Replay a finding with: BUILD/tests/fuzz/X_fuzz ARTIFACT
set -euo pipefail
cd "$(dirname "$0")/../.."
SRC=$(pwd)
BUILD=${NETVIGIL_FUZZ_BUILD_DIR:-$SRC/build-fuzz}
FIXED=0
if [ "${1:-}" = "--fixed" ]; then
  FIXED=1
  shift
fi
SECONDS_EACH=${1:-30}
JOBS=${NETVIGIL_FUZZ_JOBS:-2}
if ! [[ "$SECONDS_EACH" =~ ^[0-9]+$ ]] || [ "$SECONDS_EACH" -lt 1 ]; then
  echo "usage: tests/fuzz/run.sh [--fixed] [SECONDS_PER_HARNESS]" >&2
  exit 2
fi

started=$(date +%s)
cmake -S "$SRC" -B "$BUILD" -G Ninja -DNETVIGIL_FUZZ=ON \
  -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BUILD"
built=$(date +%s)

BIN=$BUILD/tests/fuzz
WORK=$BUILD/fuzz
FIX=$SRC/tests/fixtures
rm -rf "$WORK/seeds" "$WORK/artifacts" "$WORK/logs"
mkdir -p "$WORK/seeds" "$WORK/corpus" "$WORK/artifacts" "$WORK/logs"

# Seeds: the recorded fixtures, linked, not copied; the proto harness's
# seeds are made from the same fixtures by fuzz_seeds.
seed() {  # seed HARNESS FILE...
  mkdir -p "$WORK/seeds/$1"
  local name=$1
  shift
  ln -s "$@" "$WORK/seeds/$name/"
}
mkdir -p "$WORK/seeds/validation"
"$BIN/fuzz_seeds" "$WORK/seeds/validation" >/dev/null
seed config "$FIX"/config/*.yaml "$SRC/deploy/collector.yaml"
seed inet_diag "$FIX"/sock_diag/*.bin
seed proc "$FIX"/proc/*.txt
seed icmp "$FIX"/icmp/*.bin
seed iperf3 "$FIX"/iperf3/*.json
# The escaping's seeds are short hostile names (the alert logs are long
# enough to slow every run): ESC, CR/LF, bytes FF FE and the text naming
# them, a bidi override, C1, a backslash, NUL, and the notation itself.
mkdir -p "$WORK/seeds/escape"
i=0
for s in '\x1b[2J\x1b]0;owned\x07' 'x\nsshd 1 0 3r /root/.ssh/authorized_keys' \
    'a\rb' '\xff\xfe' '\\xFF\\xFE' 'inv\xe2\x80\xaetxt.exe' 'a\xc2\x85b' \
    'C:\\new\\' 'n\x00l' '\\u{202E}\\x41\\"' '/home/zo\xc3\xab/\xf0\x9f\x98\x80'; do
  printf "$s" >"$WORK/seeds/escape/seed$((i++))"
done
for dir in "$SRC"/tests/fuzz/regressions/*/; do
  [ -d "$dir" ] || continue
  seed "$(basename "$dir")" "$dir"*
done

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# Inputs per harness in --fixed mode: about 25 s at the exec/s CI measured.
declare -A FIXED_RUNS=([config]=30000 [icmp]=2500000 [inet_diag]=500000
  [iperf3]=500000 [proc]=45000 [validation]=2000000 [escape]=200000)

run_one() {  # run_one HARNESS
  local h=$1
  local dict=()
  [ -f "$SRC/tests/fuzz/$h.dict" ] && dict=(-dict="$SRC/tests/fuzz/$h.dict")
  local corpus=$WORK/corpus/$h
  local fixed=()
  if [ "$FIXED" = 1 ]; then
    corpus=$WORK/fixed-corpus/$h
    rm -rf "$corpus"
    fixed=(-seed=1 -runs="${FIXED_RUNS[$h]:-100000}")
  fi
  mkdir -p "$corpus" "$WORK/artifacts/$h"
  # New inputs go to the first folder (the corpus); the seeds are read.
  "$BIN/${h}_fuzz" "$corpus" "$WORK/seeds/$h" "${dict[@]}" "${fixed[@]}" \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 -artifact_prefix="$WORK/artifacts/$h/" \
    >"$WORK/logs/$h.log" 2>&1
}

harnesses=()
for src in "$SRC"/tests/fuzz/*_fuzz.cc; do
  name=$(basename "$src" .cc)
  harnesses+=("${name%_fuzz}")
done

declare -A rc=()
pending=("${harnesses[@]}")
declare -A pids=()
while [ ${#pending[@]} -gt 0 ] || [ ${#pids[@]} -gt 0 ]; do
  while [ ${#pending[@]} -gt 0 ] && [ ${#pids[@]} -lt "$JOBS" ]; do
    h=${pending[0]}
    pending=("${pending[@]:1}")
    run_one "$h" &
    pids[$h]=$!
    echo "fuzz: $h started (${SECONDS_EACH}s)"
  done
  # Reap whichever harness ended (each is waited on by its own pid).
  sleep 1
  for h in "${!pids[@]}"; do
    if ! kill -0 "${pids[$h]}" 2>/dev/null; then
      set +e
      wait "${pids[$h]}"
      rc[$h]=$?
      set -e
      unset "pids[$h]"
    fi
  done
done

failed=0
printf '\n%-12s %12s %9s %8s %9s %8s  %s\n' harness executions exec/s cov features corpus result
for h in "${harnesses[@]}"; do
  log=$WORK/logs/$h.log
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  status=$(grep -a -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$status")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$status")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$status")
  found=$(find "$WORK/artifacts/$h" -type f | head -1)
  result=ok
  if [ "${rc[$h]}" != 0 ] || [ -n "$found" ]; then
    result="FAILED (exit ${rc[$h]}) ${found:-}"
    failed=1
  fi
  printf '%-12s %12s %9s %8s %9s %8s  %s\n' "$h" "${execs:-?}" "${speed:-?}" \
    "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result"
done
ended=$(date +%s)
echo "fuzz: build $((built - started))s, harnesses $((ended - built))s"
if [ "$failed" != 0 ]; then
  for h in "${harnesses[@]}"; do
    if [ "${rc[$h]}" != 0 ]; then
      echo "---- $h ($WORK/logs/$h.log), the report:"
      grep -a -E -A25 'ERROR: |runtime error|fuzz property broken' \
        "$WORK/logs/$h.log" | head -40 || tail -5 "$WORK/logs/$h.log"
    fi
  done
  echo "fuzz: FAILED; replay: $BIN/HARNESS_fuzz $WORK/artifacts/HARNESS/FILE" >&2
  exit 1
fi
if [ "$FIXED" = 1 ]; then
  echo "fuzz: all ${#harnesses[@]} harnesses ran their fixed inputs (seed 1), no finding"
else
  echo "fuzz: all ${#harnesses[@]} harnesses ran ${SECONDS_EACH}s each, no finding"
fi
