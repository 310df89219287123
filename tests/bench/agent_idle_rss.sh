#!/bin/bash
# The idle agent's memory: netvigil-agent with its supervised iperf3 server,
# pointed at a collector address where nothing listens (loopback), after it
# has settled. Prints the RSS of the agent and of its iperf3 child.
#
#   tests/bench/agent_idle_rss.sh BUILD_DIR [SETTLE_SECONDS]
# Target (issue 5): agent plus child under 20 MiB.
set -euo pipefail
BUILD=$(realpath "${1:?usage: agent_idle_rss.sh BUILD_DIR [SETTLE_SECONDS]}")
SETTLE=${2:-5}
STATE=$(mktemp -d /tmp/netvigil-idle-XXXXXX)
PORT=$((20000 + RANDOM % 20000))
"$BUILD/agent/netvigil-agent" run --insecure --name idle --collector 127.0.0.1:1 \
  --state-dir "$STATE" --iperf-port "$PORT" >"$STATE/agent.log" 2>&1 &
AGENT=$!
cleanup() { kill -TERM "$AGENT" 2>/dev/null || true; wait "$AGENT" 2>/dev/null || true; rm -rf "$STATE"; }
trap cleanup EXIT
sleep "$SETTLE"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
agent_kib=$(rss "$AGENT")
child=$(pgrep -P "$AGENT" -x iperf3 || true)
child_kib=0
[ -n "$child" ] && child_kib=$(rss "$child")
total=$((agent_kib + child_kib))
# RSS counts every shared-library page the process touched, shared with
# every other process using that library; PSS shares them out and private
# (USS) is what this process alone costs.
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
uss() { awk '/^Private_(Clean|Dirty):/ {s += $2} END {print s}' "/proc/$1/smaps_rollup"; }
agent_pss=$(pss "$AGENT"); agent_uss=$(uss "$AGENT")
child_pss=0; child_uss=0
if [ -n "$child" ]; then child_pss=$(pss "$child"); child_uss=$(uss "$child"); fi
awk -v a="$agent_pss" -v c="$child_pss" -v ua="$agent_uss" -v uc="$child_uss" 'BEGIN {
  printf "idle agent pss_kib=%d private_kib=%d; iperf3 child pss_kib=%d private_kib=%d; total pss_mib=%.1f private_mib=%.1f\n",
         a, ua, c, uc, (a + c) / 1024, (ua + uc) / 1024 }'

awk -v a="$agent_kib" -v c="$child_kib" -v t="$total" 'BEGIN {
  printf "idle agent rss_kib=%d iperf3_child_rss_kib=%d total_mib=%.1f target_mib=20 %s\n",
         a, c, t / 1024, (t / 1024 < 20 ? "PASS" : "FAIL") }'
[ "$child_kib" -gt 0 ] || { echo "no iperf3 child found"; exit 1; }
