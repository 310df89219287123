#!/bin/bash
# Path probe benchmark, beside mtr in the same run, on a namespace lab it
# makes and removes itself (tests/lab/nvlab.py; Linux's default ICMP rate
# limit on the routers, as on a real path).
#
#   tests/bench/path_bench.sh BUILD_DIR [RUNS]
#
# 1. One target, 10 rounds at 0.1 s: netvigil-agent vs `mtr --report -c 10
#    -i 0.1` (wall time, best and median of RUNS, default 3). Targets: <= 1.3 s
#    and >= 4x faster than mtr.
# 2. 50 lab targets at once from one agent process, same options: wall time
#    (target: within 1.5x the single-target time), CPU and peak RSS, beside
#    50 concurrent mtr processes (summed CPU and RSS, wall of the slowest).
# Exits 1 when a target is missed. Needs root; sends packets only inside the
# lab's namespaces.
set -euo pipefail

BUILD_DIR=${1:?usage: path_bench.sh BUILD_DIR [RUNS]}
RUNS=${2:-3}
SOURCE_DIR=$(cd "$(dirname "$0")/../.." && pwd)
AGENT=$(realpath "$BUILD_DIR/agent/netvigil-agent")
PY=/usr/bin/python3
NVLAB="$SOURCE_DIR/tests/lab/nvlab.py"
TARGETS=50
[ -x "$AGENT" ] || { echo "no agent binary at $AGENT" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root (namespaces)" >&2; exit 2; }

WORK=$(mktemp -d /tmp/path-bench.XXXXXX)
STATE="$WORK/lab.json"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -f "$STATE" ] && $PY "$NVLAB" down --state "$STATE" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

$PY "$NVLAB" up --hosts 1 --extra-targets "$TARGETS" --state "$STATE" >/dev/null
NS=$($PY "$NVLAB" ns --state "$STATE" h1)
TARGET=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["target"]["ipv4"])' "$STATE")
mapfile -t EXTRA < <($PY -c 'import json,sys
for t in json.load(open(sys.argv[1]))["extra_targets"]: print(t["ipv4"])' "$STATE")

# time_in_ns OUT CMD...: runs CMD in h1 under /usr/bin/time; OUT gets
# "wall user sys maxrss_kb".
time_in_ns() {
  local out=$1; shift
  /usr/bin/time -f "%e %U %S %M" -o "$out" ip netns exec "$NS" "$@" >"$out.stdout" 2>"$out.stderr"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
best() { sort -g | head -1; }

sleep 1.5  # fresh ICMP token buckets on the routers
echo "== one target ($TARGET), 10 rounds at 0.1 s, $RUNS runs each"
: >"$WORK/nv1"; : >"$WORK/mtr1"
for i in $(seq "$RUNS"); do
  time_in_ns "$WORK/t" "$AGENT" probe path "$TARGET" -c 10 -i 0.1
  grep -q "$TARGET" "$WORK/t.stdout" || { cat "$WORK/t.stderr"; exit 1; }
  cut -d' ' -f1 "$WORK/t" >>"$WORK/nv1"
  time_in_ns "$WORK/t" mtr --report -n -c 10 -i 0.1 "$TARGET"
  cut -d' ' -f1 "$WORK/t" >>"$WORK/mtr1"
done
echo "netvigil-agent wall s: $(tr '\n' ' ' <"$WORK/nv1")"
echo "mtr --report   wall s: $(tr '\n' ' ' <"$WORK/mtr1")"
NV1=$(median <"$WORK/nv1"); MTR1=$(median <"$WORK/mtr1")
echo "a netvigil report:"
ip netns exec "$NS" "$AGENT" probe path "$TARGET" -c 10 -i 0.1 | sed 's/^/  /'

echo "== $TARGETS targets at once, 10 rounds at 0.1 s"
time_in_ns "$WORK/many" "$AGENT" probe path "${EXTRA[@]}" -c 10 -i 0.1 --json
read -r NVM_WALL NVM_U NVM_S NVM_RSS <"$WORK/many"
REACHED=$(grep -c '"destinationReached":true' "$WORK/many.stdout" || true)
echo "netvigil-agent, one process: wall ${NVM_WALL} s, cpu $(echo "$NVM_U + $NVM_S" | bc) s, peak RSS ${NVM_RSS} KB, destinations reached ${REACHED}/${TARGETS}"

sleep 1.5
T0=$(date +%s.%N)
for k in $(seq 0 $((TARGETS - 1))); do
  time_in_ns "$WORK/mtr.$k" mtr --report -n -c 10 -i 0.1 "${EXTRA[$k]}" &
  PIDS+=($!)
done
for pid in "${PIDS[@]}"; do wait "$pid"; done
PIDS=()
T1=$(date +%s.%N)
for k in $(seq 0 $((TARGETS - 1))); do cat "$WORK/mtr.$k"; done | awk -v wall="$(echo "$T1 - $T0" | bc)" -v n="$TARGETS" \
  '{u+=$2; s+=$3; r+=$4; if ($1>w) w=$1}
   END {printf "%d concurrent mtr: wall %.2f s (slowest %.2f s), cpu %.2f s, summed peak RSS %d KB\n", n, wall, w, u+s, r}'

echo "== verdict"
fail=0
check() {  # check NAME EXPR
  if [ "$(echo "$2" | bc -l)" = 1 ]; then echo "PASS $1"; else echo "FAIL $1"; fail=1; fi
}
check "one target ${NV1} s <= 1.3 s" "$NV1 <= 1.3"
check "one target ${NV1} s at least 4x faster than mtr ${MTR1} s ($(echo "scale=1; $MTR1 / $NV1" | bc)x)" "$MTR1 >= 4 * $NV1"
check "$TARGETS targets ${NVM_WALL} s <= 1.5 x one target ${NV1} s" "$NVM_WALL <= 1.5 * $NV1"
check "$TARGETS targets all reached" "$REACHED == $TARGETS"
exit $fail
