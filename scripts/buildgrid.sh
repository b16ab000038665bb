#!/usr/bin/env bash
# A real BuildGrid (0.9.1, from PyPI) on loopback, for the REAPI backend's tests and benchmarks.
#
#   scripts/buildgrid.sh install           the venv (Python 3.13 from pyenv) with buildgrid==0.9.1
#   scripts/buildgrid.sh up DIR PORT       PostgreSQL in DIR/pg (Unix socket only), the schema, BuildGrid on
#                                          127.0.0.1:PORT (or $BUILDGRID_ADDRESS:PORT) with its CAS in DIR/cas
#   scripts/buildgrid.sh stop-server DIR   stops BuildGrid only (the database stays), for fault tests
#   scripts/buildgrid.sh start-server DIR  starts it again with the same configuration
#   scripts/buildgrid.sh down DIR          stops both
#
# BuildGrid's instance name is "" (the default); workers match on OSFamily and ISA. Nothing listens beyond
# the given address (loopback, or a lab host's); the database listens on no TCP port at all. The action cache is
# BuildGrid's in-memory LRU over the CAS: it survives a client's restart, not BuildGrid's.
set -euo pipefail

VENV=${SWLAUNCH_BUILDGRID_VENV:-/opt/swlaunch-buildgrid}
PYTHON=${SWLAUNCH_BUILDGRID_PYTHON:-$(ls -d /root/.pyenv/versions/3.13*/bin/python3 2>/dev/null | tail -1)}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

die() { echo "buildgrid.sh: $*" >&2; exit 1; }

install() {
    if [[ -x $VENV/bin/bgd ]] && "$VENV/bin/pip" show buildgrid 2>/dev/null | grep -q '^Version: 0.9.1$'; then
        return 0
    fi
    [[ -n $PYTHON && -x $PYTHON ]] || die "no Python 3.13 (pyenv) for BuildGrid; set SWLAUNCH_BUILDGRID_PYTHON"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet buildgrid==0.9.1
}

start_server() {
    local dir=$1
    [[ -f $dir/bgd.yml ]] || die "$dir/bgd.yml: no configuration (run up first)"
    "$VENV/bin/bgd" server start "$dir/bgd.yml" >>"$dir/bgd.log" 2>&1 &
    echo $! >"$dir/bgd.pid"
    local port address; port=$(cat "$dir/port") address=$(cat "$dir/address")
    for _ in $(seq 1 300); do
        if (exec 3<>"/dev/tcp/$address/$port") 2>/dev/null; then return 0; fi
        kill -0 "$(cat "$dir/bgd.pid")" 2>/dev/null || { tail -30 "$dir/bgd.log" >&2; die "BuildGrid exited"; }
        sleep 0.1
    done
    die "BuildGrid did not listen on $address:$port within 30 s (log: $dir/bgd.log)"
}

stop_pid() {
    local file=$1
    [[ -f $file ]] || return 0
    local pid; pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

up() {
    local dir=$1 port=$2
    [[ -n $PGBIN ]] || die "PostgreSQL is not installed (apt-get install postgresql)"
    install
    mkdir -p "$dir/pg" "$dir/cas"
    dir=$(cd "$dir" && pwd)
    echo "$port" >"$dir/port"
    local address=${BUILDGRID_ADDRESS:-127.0.0.1}
    echo "$address" >"$dir/address"
    # PostgreSQL refuses to run as root: the data folder belongs to the postgres user.
    local runas=()
    if [[ $(id -u) == 0 ]]; then
        chown postgres "$dir/pg"
        chmod 700 "$dir/pg"
        runas=(runuser -u postgres --)
        chmod o+x "$dir"
    fi
    "${runas[@]}" "$PGBIN/initdb" -D "$dir/pg/data" -U bgd --auth=trust >"$dir/pg/initdb.log" 2>&1 \
        || { cat "$dir/pg/initdb.log" >&2; die "initdb failed"; }
    "${runas[@]}" "$PGBIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w \
        -o "-c listen_addresses='' -c unix_socket_directories='$dir/pg' -c fsync=off -c max_connections=200" start >/dev/null \
        || { cat "$dir/pg/postgres.log" >&2; die "PostgreSQL did not start"; }
    "${runas[@]}" "$PGBIN/createdb" -h "$dir/pg" -U bgd bgd
    local database="postgresql:///bgd?host=$dir/pg&user=bgd"
    "$VENV/bin/bgd" migrate apply "$database" >"$dir/migrate.log" 2>&1 || { cat "$dir/migrate.log" >&2; die "schema migration failed"; }
    cat >"$dir/bgd.yml" <<YAML
server:
  - !channel
    address: "$address:$port"
    insecure-mode: true
authorization:
  method: none
connections:
  - !sql-connection &sql
    connection-string: "$database"
    pool-size: 10
    max-overflow: 20
storages:
  - !disk-storage &cas
    path: $dir/cas
caches:
  - !lru-action-cache &ac
    storage: *cas
    max-cached-refs: 1000000
    allow-updates: true
    cache-failed-actions: false
schedulers:
  - !sql-scheduler &scheduler
    sql: *sql
    storage: *cas
    action-cache: *ac
    bot-session-keepalive-timeout: 30
    # A queued job waits for an assigner's tick: BuildGrid's default of 1 s would add a second to every compile.
    assigners:
      - !priority-age-assigner
        count: 2
        interval: 0.05
        jitter-factor: 0.5
    property-set: !dynamic-property-set
      match-property-keys: [OSFamily, ISA]
      wildcard-property-keys: []
# Every running compile holds an Execute stream and a gRPC thread; BuildGrid's default (5 per core, 10 here)
# refused CAS calls under -j8 with "Concurrent RPC limit exceeded".
thread-pool-size: 128
maximum-concurrent-rpcs: 128
instances:
  - name: ""
    services:
      - !action-cache
        cache: *ac
      - !execution
        scheduler: *scheduler
        operation-stream-keepalive-timeout: 10
      - !cas
        storage: *cas
      - !bytestream
        storage: *cas
YAML
    start_server "$dir"
}

down() {
    local dir=$1
    stop_pid "$dir/bgd.pid"
    if [[ -d $dir/pg/data ]]; then
        local runas=(); [[ $(id -u) == 0 ]] && runas=(runuser -u postgres --)
        "${runas[@]}" "$PGBIN/pg_ctl" -D "$dir/pg/data" -m fast stop >/dev/null 2>&1 || true
    fi
}

case ${1:-} in
    install) install ;;
    up) [[ $# == 3 ]] || die "usage: up DIR PORT"; up "$2" "$3" ;;
    stop-server) stop_pid "$2/bgd.pid" ;;
    start-server) start_server "$(cd "$2" && pwd)" ;;
    down) [[ $# == 2 ]] || die "usage: down DIR"; down "$2" ;;
    *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac
