#!/bin/bash
# netvigil's main job in one command, on a fresh Debian 12 machine, as root:
# installs the packages, builds, starts a private PostgreSQL (UNIX socket
# only), builds a lab home network of network namespaces (three hosts, a
# home router and two upstream routers, an "internet" target), starts the
# collector on the lab's home server with a CA of its own, enrols an agent
# on every lab host (a single-use token each; mTLS from then on), waits for
# the first results and prints what netvigil sees.
#
#   deploy/quickstart.sh           start (or show again, if already running)
#   deploy/quickstart.sh --stop    end everything it started, by PID, and
#                                  remove the lab
#
# Everything lives in $NETVIGIL_QUICKSTART_DIR (default
# /var/tmp/netvigil-quickstart); $NETVIGIL_QUICKSTART_HOSTS (2..20, default
# 3) sets the number of lab hosts. The CLI afterwards:
#   build/collector/netvigil --socket /var/tmp/netvigil-quickstart/query.sock agents
# Packets go only to addresses inside the lab's own namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
BUILD=${NETVIGIL_BUILD_DIR:-$SRC/build}
STATE=${NETVIGIL_QUICKSTART_DIR:-/var/tmp/netvigil-quickstart}
LAB="/usr/bin/python3 $SRC/tests/lab/nvlab.py"
HOSTS=${NETVIGIL_QUICKSTART_HOSTS:-3}
AGENT_PORT=7411
ENROLL_PORT=7412
CLI="$BUILD/collector/netvigil --socket $STATE/query.sock"

log() { echo "quickstart: $*" >&2; }

# Ends one process we started, by the PID we recorded.
stop_pid() {
  local file=$1 pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

stop_all() {
  for f in "$STATE"/agent-*.pid; do [ -e "$f" ] && stop_pid "$f"; done
  stop_pid "$STATE/collector.pid"
  if [ -f "$STATE/lab.json" ]; then
    $LAB down --state "$STATE/lab.json" && rm -f "$STATE/lab.json"
  fi
  if [ -d "$STATE/pg" ]; then
    "$SRC/deploy/pgcluster.sh" stop "$STATE/pg" || true
  fi
  log "stopped; state kept in $STATE (remove it to start from scratch)"
}

if [ "$(id -u)" != 0 ]; then
  echo "quickstart.sh: run as root (the lab makes network namespaces)" >&2
  exit 1
fi

if ! [[ "$HOSTS" =~ ^[0-9]+$ ]] || [ "$HOSTS" -lt 2 ] || [ "$HOSTS" -gt 20 ]; then
  echo "quickstart.sh: NETVIGIL_QUICKSTART_HOSTS must be 2..20, got '$HOSTS'" >&2
  exit 2
fi
# The speed mesh: every ordered pair, one test at a time, each a slot of
# 2 s + the 3 s slot_overhead; the period holds them with 20 s to spare (90 s
# for three hosts, 120 s for five), so every pair is measured once a period.
PAIRS=$((HOSTS * (HOSTS - 1)))
SPEED_PERIOD=$((PAIRS * 5 + 20 > 90 ? PAIRS * 5 + 20 : 90))

case "${1:-}" in
  --stop) stop_all; exit 0 ;;
  "") ;;
  *) sed -n '2,20p' "$0" >&2; exit 2 ;;
esac

if [ -f "$STATE/collector.pid" ] && kill -0 "$(cat "$STATE/collector.pid")" 2>/dev/null; then
  log "already running; showing it again (deploy/quickstart.sh --stop to end it)"
  $CLI overview
  exit 0
fi

deploy/install-deps.sh
log "building in $BUILD"
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
ninja -C "$BUILD" netvigil-collector netvigil-agent netvigil

mkdir -p "$STATE"
chmod 755 "$STATE"
# Whatever a previous run left behind is ended first.
stop_all >/dev/null 2>&1 || true

log "starting a private PostgreSQL in $STATE/pg"
deploy/pgcluster.sh init "$STATE/pg"
deploy/pgcluster.sh start "$STATE/pg"
DSN=$(deploy/pgcluster.sh dsn "$STATE/pg")

log "building the lab: $HOSTS hosts, routers r1-r3, an internet target"
$LAB up --hosts $HOSTS --icmp-ratelimit 0 --state "$STATE/lab.json" --dir "$STATE/lab" >/dev/null
lab_get() { /usr/bin/python3 -c "import json,sys; d=json.load(open('$STATE/lab.json')); print(eval(sys.argv[1]))" "$1"; }
SERVER=$(lab_get "d['server']['ipv4']")
TARGET=$(lab_get "d['target']['ipv4']")
GATEWAY=$(lab_get "d['routers'][0]['hop_ipv4']")

cat >"$STATE/collector.yaml" <<YAML
# Written by deploy/quickstart.sh for its lab; see deploy/collector.yaml for
# every key with its meaning.
database:
  dsn: "$DSN"
listen:
  agents: "$SERVER:$AGENT_PORT"
  enroll: "$SERVER:$ENROLL_PORT"
  query_socket: $STATE/query.sock
state_dir: $STATE/collector
pki:
  server_names: [netvigil-quickstart]
  server_addresses: [$SERVER]
agents:
  heartbeat_interval: 2s
  heartbeat_timeout: 8s
probes:
  path:
    every: 20s
    count: 10
    interval: 100ms
    targets:
      - name: gateway
        address: $GATEWAY
      - name: internet
        address: $TARGET
  sockets:
    every: 15s
  files:
    every: 30s
  speed:
    period: ${SPEED_PERIOD}s
    duration: 2s
analysis:
  learning_period: 0s
  # A new listener or program opens its alert after this hold (so the
  # opened line already says on how many hosts); 10 min by default, short
  # here so what you try in the lab shows within a minute.
  multi_host_window: 30s
alerts:
  # One line per alert event, as fail2ban reads it (README, "Alerts and
  # fail2ban").
  log_file: $STATE/alerts.log
YAML

COLLECTOR="$BUILD/collector/netvigil-collector --config $STATE/collector.yaml"
if [ ! -f "$STATE/collector/pki/ca.key" ]; then
  log "creating the collector's CA and server certificate in $STATE/collector/pki"
  $COLLECTOR pki init >/dev/null
fi

# Results measured from here on are this run's (see the wait below).
started=$(date -u +%Y-%m-%dT%H:%M:%S)
log "starting the collector on the lab's home server ($SERVER:$AGENT_PORT, mTLS)"
$LAB exec --state "$STATE/lab.json" server -- \
  $COLLECTOR >"$STATE/collector.log" 2>&1 &
echo $! >"$STATE/collector.pid"
for _ in $(seq 100); do
  grep -q collector_listening "$STATE/collector.log" 2>/dev/null && break
  sleep 0.2
done

for k in $(seq $HOSTS); do
  home=$(lab_get "d['hosts'][$((k-1))]['home']")
  if [ ! -f "$STATE/agent-h$k/client.crt" ]; then
    # What an administrator does once per host: a token on the collector,
    # `netvigil-agent enroll` with it on the host (the key stays there).
    out=$($COLLECTOR enroll "h$k" --ttl 10m --replace)
    token=$(echo "$out" | sed -n 's/^token: //p')
    fingerprint=$(echo "$out" | sed -n 's/^ca_fingerprint: //p')
    log "enrolling h$k (CA $fingerprint)"
    $LAB exec --state "$STATE/lab.json" "h$k" -- \
      "$BUILD/agent/netvigil-agent" enroll --collector "$SERVER:$ENROLL_PORT" \
        --name "h$k" --token "$token" --ca-fingerprint "$fingerprint" \
        --state-dir "$STATE/agent-h$k" >/dev/null
  fi
  log "starting the agent on h$k (watching $home)"
  $LAB exec --state "$STATE/lab.json" "h$k" -- \
    "$BUILD/agent/netvigil-agent" run \
      --collector "$SERVER:$AGENT_PORT" --state-dir "$STATE/agent-h$k" \
      --watch "$home" \
    >"$STATE/agent-h$k.log" 2>&1 &
  echo $! >"$STATE/agent-h$k.pid"
done

log "waiting for every agent to come online"
for _ in $(seq 120); do
  online=$($CLI agents --json 2>/dev/null | grep -c '"online": true' || true)
  [ "$online" -ge $HOSTS ] && break
  sleep 0.5
done
if [ "${online:-0}" -lt $HOSTS ]; then
  log "only ${online:-0} of $HOSTS agents came online; logs are in $STATE"
  exit 1
fi

# The first path runs come within seconds; the speed mesh (every ordered
# pair, one test at a time, spread over the speed period) within the period.
# Only what was measured since this start counts: over kept state the
# overview already holds results of an earlier run.
pairs=$PAIRS
wait_s=$((SPEED_PERIOD + 30))
log "waiting for the first path results and the speed mesh ($pairs pairs, up to $wait_s s)"
fresh() {
  $CLI overview --json 2>/dev/null | /usr/bin/python3 -c '
import json, sys
since = sys.argv[1]
d = json.load(sys.stdin)
paths = sum(1 for h in d.get("hosts", []) for p in h.get("paths", [])
            if p.get("at", "") >= since and p.get("hopCount"))
cells = sum(1 for c in d.get("speed", {}).get("cells", [])
            if c.get("at", "") >= since and c.get("outcome") == "SPEED_OUTCOME_OK")
print(paths, cells)' "$started" 2>/dev/null || echo 0 0
}
paths=0 cells=0
for _ in $(seq $((wait_s * 2))); do
  read -r paths cells < <(fresh)
  [ "$paths" -ge $((HOSTS * 2)) ] && [ "$cells" -ge "$pairs" ] && break
  sleep 0.5
done
if [ "$paths" -lt $((HOSTS * 2)) ] || [ "$cells" -lt "$pairs" ]; then
  log "after $wait_s s: $paths of $((HOSTS * 2)) path results and $cells of $pairs speed pairs measured since the start; logs are in $STATE"
fi

echo
$CLI overview
echo
log "running; the CLI is: $CLI <command>"
log "the alert log (one line per alert event, for fail2ban): $STATE/alerts.log"
log "stop everything with: deploy/quickstart.sh --stop"
