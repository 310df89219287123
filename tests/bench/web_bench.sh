#!/bin/bash
# The web dashboard's benchmark on the query benchmark's data: runs
# query_bench (seeding 30 days into a private PostgreSQL) with
# QUERY_BENCH_HOLD, times the dashboard on that database (web_bench, then
# Chromium's first paint of the home page with web_paint.py), then lets
# query_bench finish and remove its cluster.
# Usage: tests/bench/web_bench.sh [BUILD_DIR] [DAYS] [ITERATIONS]
set -euo pipefail
build=${1:-build}
days=${2:-30}
iterations=${3:-100}
fifo=$(mktemp -u /tmp/web_bench.XXXXXX)
mkfifo "$fifo"
out=$(mktemp /tmp/web_bench_out.XXXXXX)
QUERY_BENCH_HOLD=1 "$build/tests/bench/query_bench" "$days" 30 <"$fifo" >"$out" 2>&1 &
qb=$!
exec 3>"$fifo"  # held open: query_bench waits on it for its Enter
cleanup() { echo >&3 || true; exec 3>&-; wait "$qb" || true; rm -f "$fifo" "$out"; }
trap cleanup EXIT
until grep -q "^holding: psql" "$out"; do
  if ! kill -0 "$qb" 2>/dev/null; then cat "$out"; exit 1; fi
  sleep 2
done
grep "^seed" "$out" || true
dsn=$(sed -n "s/^holding: psql '\(.*\)'; press.*/\1/p" "$out")
WEB_BENCH_PAINT="$(dirname "$0")/web_paint.py" WEB_BENCH_DSN="$dsn" "$build/tests/bench/web_bench" "$iterations"
