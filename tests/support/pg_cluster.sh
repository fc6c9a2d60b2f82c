#!/usr/bin/env bash
# Starts or stops a throw-away PostgreSQL 15 cluster for the tests.
#
#   pg_cluster.sh start DIR   initdb + start; writes DIR/conninfo, DIR/datadir, DIR/log
#   pg_cluster.sh stop DIR    stops the cluster and removes its data
#   pg_cluster.sh pause DIR   stops the server only (an outage; data kept)
#   pg_cluster.sh resume DIR  starts it again on the same port
#
# The data lives in a fresh /tmp/chatd-pg.XXXXXX (the build tree may not be
# traversable by the server's user). PostgreSQL refuses to run as root, so as
# root the server runs as `nobody`. The server listens on 127.0.0.1 only, on a
# random free port, with trust authentication: it is for tests, nothing else.
# `start` first stops a cluster an earlier, crashed run left behind in DIR.
set -euo pipefail

readonly bin=/usr/lib/postgresql/15/bin

usage() {
  echo "usage: $0 start|stop|pause|resume DIR" >&2
  exit 2
}

# Runs a PostgreSQL program as the cluster's user, from a directory it can enter.
as_server() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u nobody -- "$@")
  else
    (cd / && "$@")
  fi
}

stop_cluster() {
  local dir=$1
  [ -f "$dir/datadir" ] || return 0
  local data
  data=$(cat "$dir/datadir")
  case "$data" in
    /tmp/chatd-pg.*) ;;
    *) echo "pg_cluster: refusing to remove '$data'" >&2; return 1 ;;
  esac
  if [ -f "$data/data/postmaster.pid" ]; then
    local pid
    pid=$(head -n 1 "$data/data/postmaster.pid")
    as_server "$bin/pg_ctl" -D "$data/data" -m fast -w -t 60 stop >/dev/null ||
      as_server "$bin/pg_ctl" -D "$data/data" -m immediate -w -t 60 stop >/dev/null || true
    # The postmaster was a daemon: wait (a little) until init has reaped it.
    local i
    for i in $(seq 50); do
      [ -e "/proc/$pid" ] || break
      sleep 0.1
    done
  fi
  rm -rf "$data"
  rm -f "$dir/datadir" "$dir/conninfo" "$dir/log" "$dir/initdb.log"
}

start_cluster() {
  local dir=$1
  mkdir -p "$dir"
  stop_cluster "$dir"

  local data
  data=$(mktemp -d /tmp/chatd-pg.XXXXXX)
  echo "$data" >"$dir/datadir"
  if [ "$(id -u)" = 0 ]; then chown nobody "$data"; fi
  chmod 700 "$data"
  ln -sfn "$data/log" "$dir/log"

  if ! as_server "$bin/initdb" -D "$data/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
      >"$dir/initdb.log" 2>&1; then
    cat "$dir/initdb.log" >&2
    return 1
  fi
  cat >>"$data/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$data'
fsync = on
max_connections = 200
shared_buffers = 128MB
EOF

  # A port that looks free may be taken before the server binds it: try again
  # on another one when the start fails.
  local attempt port
  for attempt in 1 2 3 4 5 6 7 8; do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if ss -Hltn "sport = :$port" | grep -q .; then continue; fi
    if as_server "$bin/pg_ctl" -D "$data/data" -o "-p $port" -l "$data/log" -w -t 60 start \
        >/dev/null; then
      echo "host=127.0.0.1 port=$port user=postgres dbname=postgres" >"$dir/conninfo"
      echo "pg_cluster: started on port $port, data in $data"
      return 0
    fi
  done
  echo "pg_cluster: could not start the server; its log:" >&2
  cat "$data/log" >&2 || true
  return 1
}

pause_server() {
  local data
  data=$(cat "$1/datadir")
  as_server "$bin/pg_ctl" -D "$data/data" -m fast -w -t 60 stop >/dev/null
}

resume_server() {
  local data port
  data=$(cat "$1/datadir")
  port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' "$1/conninfo")
  as_server "$bin/pg_ctl" -D "$data/data" -o "-p $port" -l "$data/log" -w -t 60 start >/dev/null
}

[ $# -eq 2 ] || usage
case "$1" in
  start) start_cluster "$2" ;;
  stop) stop_cluster "$2" ;;
  pause) pause_server "$2" ;;
  resume) resume_server "$2" ;;
  *) usage ;;
esac
