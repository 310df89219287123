#!/bin/bash
# What TLS costs the ingest: the same saturating load (netvigil-loadgen,
# AGENTS simulated agents with one connection each) against the collector in
# plain text (--insecure) and with mTLS (a certificate per agent, issued and
# recorded like enrollment's), alternating ROUNDS times in one run on one
# private PostgreSQL. Prints committed results/s of each and the ratio; issue
# #9 asks for TLS to cost at most 10%. Run as root (pgcluster.sh).
#
#   tests/bench/ingest_tls.sh [BUILD] [AGENTS] [SECONDS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=$(realpath "${1:-build}")
AGENTS=${2:-50}
DURATION=${3:-20}
ROUNDS=${4:-2}
ninja -C "$BUILD" netvigil-collector netvigil-loadgen >/dev/null
DIR=$(mktemp -d /var/tmp/netvigil-ingest-tls-XXXXXX)
chmod 755 "$DIR"
COLLECTOR_PID=
cleanup() {
  [ -n "$COLLECTOR_PID" ] && stop_collector
  deploy/pgcluster.sh stop "$DIR/pg" >/dev/null 2>&1 || true
  rm -rf "$DIR"
}
trap cleanup EXIT
[ -n "${KEEP:-}" ] && trap - EXIT
deploy/pgcluster.sh init "$DIR/pg" >/dev/null
deploy/pgcluster.sh start "$DIR/pg" >/dev/null
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$DIR/c.yaml" <<YAML
database:
  dsn: "$(deploy/pgcluster.sh dsn "$DIR/pg")"
listen:
  agents: "127.0.0.1:$PORT"
  enroll: ""
  query_socket: $DIR/q.sock
state_dir: $DIR/state
pki:
  server_names: [bench.test]
probes:
  speed:
    enabled: false
YAML
C="$BUILD/collector/netvigil-collector --config $DIR/c.yaml"
$C pki init >/dev/null
mkdir -p "$DIR/tls"
for i in $(seq 0 $((AGENTS - 1))); do
  n=$(printf "tls-%04d" "$i")
  $C pki issue "$n" --out "$DIR/tls/$n" --record >/dev/null
done

# SIGTERM, then SIGKILL if it has not ended within 10 s.
stop_collector() {
  kill "$COLLECTOR_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$COLLECTOR_PID" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$COLLECTOR_PID" 2>/dev/null && echo "collector did not stop within 10 s of SIGTERM" >&2
  wait "$COLLECTOR_PID" 2>/dev/null || true
  COLLECTOR_PID=
}

run() {  # run MODE ROUND: "results/s reconnects all_acked" into $DIR/rate
  local mode=$1 round=$2 flags=() lg=()
  if [ "$mode" = plain ]; then flags=(--insecure); lg=(--connections "$AGENTS"); else lg=(--tls-dir "$DIR/tls"); fi
  $C "${flags[@]}" >"$DIR/collector-$mode-$round.log" 2>&1 &
  COLLECTOR_PID=$!
  for _ in $(seq 150); do grep -q database_ready "$DIR/collector-$mode-$round.log" && break; sleep 0.2; done
  "$BUILD/tests/bench/netvigil-loadgen" --collector "127.0.0.1:$PORT" --agents "$AGENTS" \
    --prefix "$mode" "${lg[@]}" --interval 0.01 --sockets 300 --duration "$DURATION" \
    --window 64 --drain-timeout 120 >"$DIR/lg-$mode-$round.json" 2>"$DIR/lg-$mode-$round.err" || true
  stop_collector
  /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("%.1f %d %s" % (d["acked"]/d["elapsed_s"], d["reconnects"], d["all_acked"]))' "$DIR/lg-$mode-$round.json" >"$DIR/rate"
}

plain=0; tls=0
for r in $(seq "$ROUNDS"); do
  run plain "$r"; read -r p prc pok <"$DIR/rate"
  run tls "$r"; read -r t trc tok <"$DIR/rate"
  echo "round $r: plain ${p} results/s (reconnects $prc, all acked $pok); mTLS ${t} results/s (reconnects $trc, all acked $tok)"
  plain=$(/usr/bin/python3 -c "print($plain + $p)"); tls=$(/usr/bin/python3 -c "print($tls + $t)")
done
/usr/bin/python3 -c "p=$plain/$ROUNDS; t=$tls/$ROUNDS; print(f'ingest, {$AGENTS} agents x 300-socket snapshots, {$DURATION} s each: plain {p:.0f}/s, mTLS {t:.0f}/s, TLS costs {100*(1-t/p):.1f}%')"
