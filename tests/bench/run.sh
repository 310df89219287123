#!/bin/bash
# Every benchmark in one command, each beside its classic tool measured in
# the same run, ratios printed: path (mtr), sockets and files (ss, lsof),
# speed (iperf3, and planning 200 agents), the agent's spool, and the Query
# service on a month of history (query_bench, about 3 min), and ingest from
# 1,000 simulated agents beside psql COPY (ingest.sh, about 8 min) and its
# cost with mTLS (ingest_tls.sh, about 2 min), and the bytes an agent-day
# costs at the default plan (sizing.sh, about 3 min). Run as root on
# a quiet machine (the figures are wall times on 2 cores); it builds the
# benchmark targets first.
#
#   tests/bench/run.sh [BUILD_DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=$(realpath "${1:-build}")
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BUILD" netvigil-agent sockets_files_bench speed_plan_bench \
  speed_agent_bench spool_bench query_bench >/dev/null || exit 1
rc=0
for b in path_bench.sh sockets_files.sh speed_bench.sh agent_idle_rss.sh spool.sh ingest.sh ingest_tls.sh sizing.sh; do
  echo "=== tests/bench/$b"
  bash "tests/bench/$b" "$BUILD" || rc=1
  echo
done
echo "=== tests/bench/query_bench.cc"
"$BUILD/tests/bench/query_bench" || rc=1
exit $rc
