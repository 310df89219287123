#!/bin/bash
# Sizing (issue 20): the real collector and a private PostgreSQL, with
# simulated agents (netvigil-loadgen in plan mode) at the default plan --
# path runs to two targets and a socket snapshot every 60 s, a file snapshot
# every 5 min, a speed test every hour -- on a desktop's socket table (300
# connections, one to an endpoint never seen before every 5 s). Time is
# compressed: each agent sends its results every INTERVAL_S of real time
# while their timestamps advance at the plan's rate, over 3 simulated hours
# of warm-up (the learning period is set to 20 s of real time) and then one
# whole simulated UTC day, which is what is measured: bytes per agent-day
# of every table (pg_total_relation_size of the table and its partitions,
# delta over the day), rows per agent-day, the endpoints first seen in the
# day, and the CPU the collector and PostgreSQL spent on it. Then the
# retention of that day's partitions is timed.
#
#   tests/bench/sizing.sh BUILD_DIR [AGENTS] [INTERVAL_S] [NEW_REMOTE_S]
#
# The desktop is the adversarial one (every new connection to an endpoint
# never seen before) unless POOL is set: then it is the realistic one
# (README "Sizing"): each new connection goes to one of POOL endpoints by
# Zipf popularity (exponent ZIPF_S, default 1.0), NEVER_SEEN (default 0.02)
# of them somewhere never seen before, and the first snapshot meets the
# whole pool once (a desktop that has run for months; LEARNED=0: not).
#
# Defaults: 4 agents, a result every 0.03 s each (about 130 results/s in
# all: a simulated day in about 2.5 min here), a new endpoint every 5 s.
# Run as root (the cluster runs as the postgres user).
set -euo pipefail
build=$(realpath "${1:?usage: $0 BUILD_DIR [AGENTS] [INTERVAL_S] [NEW_REMOTE_S]}")
agents=${2:-4}
interval=${3:-0.03}
new_remote=${4:-5}
realistic=()
if [ -n "${POOL:-}" ]; then
  realistic=(--plan-pool "$POOL" --plan-zipf-s "${ZIPF_S:-1.0}"
             --plan-never-seen-share "${NEVER_SEEN:-0.02}")
  [ "${LEARNED:-1}" = 1 ] && realistic+=(--plan-pool-learned)
fi
src=$(cd "$(dirname "$0")/../.." && pwd)
pgc="$src/deploy/pgcluster.sh"
nice ninja -C "$build" -j2 netvigil-collector netvigil-loadgen >/dev/null

dir=$(mktemp -d /var/tmp/nv-sizing-bench.XXXXXX)
chmod 755 "$dir"
collector_pid=""
loadgen_pid=""
cleanup() {
  if [ -n "$loadgen_pid" ]; then kill "$loadgen_pid" 2>/dev/null || true; wait "$loadgen_pid" 2>/dev/null || true; fi
  if [ -n "$collector_pid" ]; then kill "$collector_pid" 2>/dev/null || true; wait "$collector_pid" 2>/dev/null || true; fi
  "$pgc" stop "$dir/pg" fast >/dev/null 2>&1 || true
  cp "$dir/collector.log" /tmp/sizing-bench-collector.log 2>/dev/null || true
  cp "$dir/loadgen.log" /tmp/sizing-bench-loadgen.log 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

"$pgc" init "$dir/pg" >/dev/null
"$pgc" start "$dir/pg"
dsn=$("$pgc" dsn "$dir/pg")
psql_pg() { runuser -u postgres -- psql -h "$dir/pg" -U postgres -d netvigil -tAXq "$@"; }

# The measured day is yesterday (UTC), so every time is in the past and
# within the collector's window of believable times.
day=$(( $(date +%s) / 86400 * 86400 - 86400 ))
plan_start=$(( day - 3 * 3600 ))
plan_until=$(( day + 86400 ))

port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$dir/collector.yaml" <<YAML
database:
  dsn: "$dsn"
listen:
  agents: "127.0.0.1:$port"
  query_socket: $dir/query.sock
agents:
  heartbeat_interval: 5s
  heartbeat_timeout: 30s
# The agents send their own hourly speed results; the collector's mesh (its
# default period) asks simulated agents that never answer, and records
# those tests as not answered: a few rows more than a real LAN's.
# The analysis learns by the collector's clock (real time): 20 s is over
# before the measured day starts (the warm-up takes about 20 s), so the
# day's new endpoints are news and their alerts are measured too.
analysis:
  learning_period: ${LEARNING:-20s}
YAML
"$build/collector/netvigil-collector" --config "$dir/collector.yaml" --insecure >"$dir/collector.log" 2>&1 &
collector_pid=$!
for _ in $(seq 150); do grep -q database_ready "$dir/collector.log" && break; sleep 0.2; done
grep -q database_ready "$dir/collector.log" || { echo "collector did not start" >&2; cat "$dir/collector.log" >&2; exit 1; }
postmaster=$(head -1 "$dir/pg/data/postmaster.pid")

# CPU seconds (user + system) of the collector, and of PostgreSQL: the
# postmaster with its exited children and its live ones.
ticks=$(getconf CLK_TCK)
cpu_of() { awk -v t="$ticks" '{print ($14 + $15) / t}' "/proc/$1/stat"; }
pg_cpu() {
  local total
  total=$(awk -v t="$ticks" '{print ($14 + $15 + $16 + $17) / t}' "/proc/$postmaster/stat")
  for p in $(pgrep -P "$postmaster"); do
    total=$(echo "$total + $(cpu_of "$p" 2>/dev/null || echo 0)" | bc -l)
  done
  echo "$total"
}

tables="results path_runs speed_results socket_events socket_event_sets file_events socket_fact_rows socket_programs path_routes file_facts path_hourly speed_hourly probe_state gaps alerts alert_events analysis_state agents"
snapshot() {  # FILE: table size rows, per line
  for t in $tables; do
    psql_pg -c "SELECT '$t', CASE WHEN (SELECT relkind FROM pg_class WHERE oid = '$t'::regclass) = 'p' THEN (SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('$t')) ELSE pg_total_relation_size('$t') END, (SELECT count(*) FROM $t)"
  done >"$1"
}
progress() {  # the sum over agents of their newest result's time, seconds
  psql_pg -c "SELECT COALESCE(sum(extract(epoch FROM t)), 0) FROM (SELECT max(last_at) t FROM probe_state GROUP BY agent_id) x"
}

t_start=$(date +%s.%N)
"$build/tests/bench/netvigil-loadgen" --collector "127.0.0.1:$port" --agents "$agents" \
  --interval "$interval" --sockets 300 --duration 86400 --drain-timeout 300 \
  --plan-start "$plan_start" --plan-until "$plan_until" --plan-new-remote-s "$new_remote" "${realistic[@]}" \
  >"$dir/report.json" 2>"$dir/loadgen.log" &
loadgen_pid=$!

# The mark: every agent past the warm-up (its sockets at the day's start).
for _ in $(seq 3000); do
  n=$(psql_pg -c "SELECT count(*) FROM probe_state WHERE kind = 'sockets' AND last_at >= to_timestamp($day)")
  [ "$n" -ge "$agents" ] && break
  sleep 0.2
done
snapshot "$dir/mark.txt"
p0=$(progress)
c0=$(cpu_of "$collector_pid"); g0=$(pg_cpu); w0=$(date +%s.%N)

wait "$loadgen_pid" || echo "loadgen: not everything was acknowledged" >&2
loadgen_pid=""
snapshot "$dir/end.txt"
p1=$(progress)
c1=$(cpu_of "$collector_pid"); g1=$(pg_cpu); w1=$(date +%s.%N)

# What a payload costs, by kind: its bytes and what PostgreSQL stores.
psql_pg -c "SELECT kind, count(*), count(payload), round(avg(octet_length(payload))), round(avg(pg_column_size(payload))) FROM results GROUP BY kind ORDER BY kind" >"$dir/payloads.txt"

# Endpoints never seen before the measured day: socket facts (a fact is an
# endpoint a program reaches, or a listener) first seen in it, per agent.
psql_pg -c "SELECT count(*) FILTER (WHERE key_kind = 'remote'), count(*) FROM socket_facts WHERE first_seen >= to_timestamp($day) AND first_seen < to_timestamp($day + 86400)" >"$dir/never_seen.txt"

# Where socket facts' bytes are (the table itself, its key index, its
# first_seen index), how many facts there are, and how many of its updates
# were heap-only (migration 0017). Socket facts are socket_fact_rows with
# their programs in socket_programs (migration 0019; socket_facts is a view).
psql_pg -c "SELECT pg_relation_size('socket_fact_rows'), pg_relation_size('socket_fact_rows_pkey'), pg_relation_size('socket_fact_rows_first_seen'), (SELECT count(*) FROM socket_fact_rows), n_tup_upd, n_tup_hot_upd, n_dead_tup, autovacuum_count FROM pg_stat_user_tables WHERE relname = 'socket_fact_rows'" >"$dir/facts.txt"

# The retention of the measured day: its partitions of the six day tables
# dropped in one transaction, as the retention pass does.
drop_ms=$(psql_pg -c "\\timing on" -c "BEGIN; SELECT nv_drop_partitions('results', to_timestamp($day + 86400)), nv_drop_partitions('path_runs', to_timestamp($day + 86400)), nv_drop_partitions('speed_results', to_timestamp($day + 86400)), nv_drop_partitions('socket_events', to_timestamp($day + 86400)), nv_drop_partitions('file_events', to_timestamp($day + 86400)), nv_drop_partitions('socket_event_sets', to_timestamp($day + 86400)); COMMIT;" \
  | awk '/^Time:/ {s += $2} END {printf "%.1f", s}')

/usr/bin/python3 - "$dir" "$agents" "$p0" "$p1" "$c0" "$c1" "$g0" "$g1" "$w0" "$w1" "$drop_ms" "$interval" "$new_remote" <<'PY'
import json, os, sys
d, agents = sys.argv[1], int(sys.argv[2])
p0, p1, c0, c1, g0, g1, w0, w1, drop_ms = map(float, sys.argv[3:12])
interval, new_remote = sys.argv[12], sys.argv[13]
def load(f):
    out = {}
    for line in open(f):
        t, size, rows = line.strip().split("|")
        out[t] = (int(size), int(rows))
    return out
a, b = load(f"{d}/mark.txt"), load(f"{d}/end.txt")
rep = json.load(open(f"{d}/report.json"))
agent_days = (p1 - p0) / 86400
print(f"agents={agents} interval_s={interval} new_remote_every_s={new_remote} "
      f"desktop={os.environ.get('POOL') and 'realistic pool=%s zipf_s=%s never_seen=%s learned=%s' % (os.environ['POOL'], os.environ.get('ZIPF_S', '1.0'), os.environ.get('NEVER_SEEN', '0.02'), os.environ.get('LEARNED', '1')) or 'adversarial'} "
      f"produced={rep['produced']} acked={rep['acked']} all_acked={rep['all_acked']}")
print(f"measured: {agent_days:.2f} agent-days after 3 simulated hours of warm-up, "
      f"in {w1 - w0:.0f} s of real time")
print(f"{'table':16} {'bytes/agent-day':>16} {'rows/agent-day':>15}")
total = rows = 0
for t in a:
    db = (b[t][0] - a[t][0]) / agent_days
    dr = (b[t][1] - a[t][1]) / agent_days
    total += db
    rows += max(dr, 0)
    print(f"{t:16} {db:16.0f} {dr:15.0f}")
print(f"{'all tables':16} {total:16.0f} {rows:15.0f}   ({total / 1e6:.2f} MB per agent-day)")
results_day = (b['results'][1] - a['results'][1]) / agent_days
print(f"results per agent-day: {results_day:.0f} ({results_day / 86400:.4f} results/s an agent)")
print(f"cpu per agent-day: collector {(c1 - c0) / agent_days:.1f} s, postgresql {(g1 - g0) / agent_days:.1f} s")
print("payloads by kind: kind results kept avg_bytes avg_stored_bytes")
for line in open(f"{d}/payloads.txt"):
    print("  " + line.strip().replace("|", " "))
remote_new, facts_new = open(f"{d}/never_seen.txt").read().strip().split("|")
print(f"never-seen endpoints in the measured day: {int(remote_new) / agent_days:.0f} per agent-day "
      f"({int(facts_new) / agent_days:.0f} socket facts first seen, any kind)")
heap, key, first, n, upd, hot, dead, av = map(int, open(f"{d}/facts.txt").read().strip().split("|"))
print(f"socket facts at the end: {n} facts; table {heap} bytes ({heap / max(n, 1):.0f} a fact), "
      f"key index {key} ({key / max(n, 1):.0f}), first_seen index {first} ({first / max(n, 1):.0f}); "
      f"{upd} updates, {hot} heap-only; {dead} dead rows; autovacuumed {av} times")
print(f"retention of the measured day's partitions (6 tables, {agents} agents): {drop_ms:.1f} ms")
PY
