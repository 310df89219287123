#!/bin/sh
# Spool throughput on this disk, durable (WAL, synchronous=FULL): results/s
# for single Append (1 and 4 threads) and AppendBatch with ~2 KB results.
# Usage: tests/bench/spool.sh BUILD_DIR [SINGLE_COUNT] [BATCH_COUNT] [BATCH_SIZE] [CAP_MIB]
# (CAP_MIB, default 8: the cap for the over-cap and full-spool-open figures.)
# Runs in a temp folder under /var/tmp (a real disk, not tmpfs).
set -eu
build=${1:?usage: $0 BUILD_DIR [SINGLE_COUNT] [BATCH_COUNT] [BATCH_SIZE] [CAP_MIB]}
bin="$build/tests/bench/spool_bench"
if [ ! -x "$bin" ]; then
  ninja -C "$build" -j2 spool_bench
fi
dir=$(mktemp -d /var/tmp/spool_bench.XXXXXX)
trap 'rm -rf "$dir"' EXIT INT TERM
df -h "$dir" | tail -1 | awk '{print "filesystem=" $1 " mounted_on=" $6}'
"$bin" "$dir" "${2:-3000}" "${3:-100000}" "${4:-100}" "${5:-8}"
