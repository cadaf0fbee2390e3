# Sourced by tests/run.sh: a PostgreSQL server of the test run's own, on loopback.
#
#   pg_start   installs PostgreSQL from Debian when it is missing, creates a cluster in
#              target/postgres (initdb, as the `postgres` user when run as root), starts it on
#              127.0.0.1 at a free port, and exports TOLLGATE_TEST_POSTGRES_URL (a role that may
#              create databases: each test makes its own);
#   pg_stop    stops it (run.sh traps EXIT, so a failing run stops it too).

pg_bin() {
    local dir
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
    done
    return 1
}

pg_as() {
    # initdb and postgres refuse to run as root.
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
    if ! pg_bin >/dev/null; then
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
    fi
    local bin
    bin="$(pg_bin)"
    PG_DATA="$PWD/target/postgres/data"
    PG_SOCKETS="$PWD/target/postgres/sockets"
    rm -rf "$PWD/target/postgres"
    mkdir -p "$PG_DATA" "$PG_SOCKETS"
    if [ "$(id -u)" = 0 ]; then chown -R postgres "$PWD/target/postgres"; fi
    PG_PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    pg_as "$bin/initdb" -D "$PG_DATA" -U tollgate --auth=trust -E UTF8 >/dev/null
    pg_as "$bin/pg_ctl" -D "$PG_DATA" -l "$PWD/target/postgres/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_SOCKETS -c max_connections=300 -c fsync=off" start >/dev/null
    PG_CTL="$bin/pg_ctl"
    export TOLLGATE_TEST_POSTGRES_URL="postgres://tollgate@127.0.0.1:$PG_PORT/postgres"
    # The database-restart test restarts the server under load with this command.
    local as=""
    [ "$(id -u)" = 0 ] && as="runuser -u postgres --"
    # The restarted server logs to the file, not to the test's output (which it would hold open).
    export TOLLGATE_TEST_POSTGRES_RESTART="$as $bin/pg_ctl -D $PG_DATA -l $PWD/target/postgres/server.log -m fast -w -t 60 restart >/dev/null 2>&1"
    echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
}

pg_stop() {
    if [ -n "${PG_CTL:-}" ]; then
        pg_as "$PG_CTL" -D "$PG_DATA" -m fast -w stop >/dev/null 2>&1 || true
        PG_CTL=""
    fi
}
