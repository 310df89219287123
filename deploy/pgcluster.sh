#!/bin/bash
# A private PostgreSQL cluster for the quickstart and the tests: its data,
# log and UNIX socket all live in DIR, and it listens on no TCP port.
#
#   pgcluster.sh init DIR        create the cluster and the netvigil database
#   pgcluster.sh start DIR       start it (waits until it accepts connections)
#   pgcluster.sh stop DIR [MODE] stop it (MODE: fast or immediate; default fast)
#   pgcluster.sh dsn DIR         print the libpq connection string
#
# PostgreSQL refuses to run as root, so as root the server runs as the
# `postgres` system user that Debian's package creates; DIR must then be on a
# path that user can reach (not under /root).
set -euo pipefail

PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$PGBIN" ] || { echo "pgcluster: PostgreSQL server binaries not found (install postgresql)" >&2; exit 1; }

usage() { sed -n '2,12p' "$0" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")
data=$dir/data

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case $cmd in
  init)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    chmod 700 "$dir"
    if [ ! -f "$data/PG_VERSION" ]; then
      as_pg "$PGBIN/initdb" -D "$data" -U postgres -A trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    fi
    ;;
  start)
    as_pg "$PGBIN/pg_ctl" -D "$data" -l "$dir/postgresql.log" -w -t 60 \
      -o "-c listen_addresses='' -c unix_socket_directories='$dir' -c max_connections=200" \
      start >/dev/null
    if ! as_pg "$PGBIN/psql" -h "$dir" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'netvigil'" | grep -q 1; then
      as_pg "$PGBIN/psql" -h "$dir" -U postgres -d postgres -qc "CREATE DATABASE netvigil" >/dev/null
    fi
    ;;
  stop)
    mode=${3:-fast}
    if [ -f "$data/postmaster.pid" ]; then
      as_pg "$PGBIN/pg_ctl" -D "$data" -m "$mode" -w -t 60 stop >/dev/null
    fi
    ;;
  dsn)
    echo "host=$dir dbname=netvigil user=postgres connect_timeout=5"
    ;;
  *)
    usage
    ;;
esac
