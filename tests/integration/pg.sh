# pg.sh - a private PostgreSQL 15 for the integration tests (bash; source it
# after lib.sh, do not run it).
#
# One cluster per test run, in a directory of its own: Unix socket only (no
# TCP port is bound, so runs side by side never collide), fsync off, stopped
# by PID. The database is `imgmeta`, owned by a superuser role named like the
# user the tests run as (`id -un`: root in CI), which is who libpq connects as
# when the URI names no user: PG_URI needs no user= and is the form
# `imgmeta serve --db` takes.
#
#   . tests/integration/lib.sh; . tests/integration/pg.sh
#   lib_init ...
#   pg_start "$IT_DIR/pg"        # sets PG_DIR PG_DATA PG_LOG PG_PORT PG_PID
#                                #      PG_USER PG_URI (exported)
#   pg_psql 'SELECT 1'           # -> 1
#   pg_restart                   # same data, same socket; PG_PID changes
#   pg_kill                      # SIGKILL to the whole cluster (a crash)
#   pg_pause; pg_resume          # SIGSTOP / SIGCONT to the whole cluster
#   pg_stop                      # also done by stop_all and at exit
#
# PG_URI is postgresql:///imgmeta?host=PG_DIR&port=PG_PORT. PG_PID is the
# postmaster's PID, which is also the process group of every backend (it runs
# in a session of its own): `kill -STOP "$PG_PID"` freezes the postmaster
# alone (new connections hang, open ones go on), `kill -KILL -- -"$PG_PID"`
# every process of the cluster (pg_kill). Each start appends to PG_LOG.
# As root, initdb and the server run as the `postgres` user (the server
# refuses to run as root): PG_DIR is made that user's, and the directories
# above it traversable (o+x). psql (pg_psql) runs as the calling user.
# PG_BIN (default /usr/lib/postgresql/15/bin) is where initdb, postgres and
# psql are taken from. One cluster at a time per test (the PG_* variables).

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# pg_as_owner CMD...: CMD as the cluster's owner (postgres when root), in PG_DIR.
pg_as_owner() {
    if [ "$(id -u)" -ne 0 ]; then
        (cd "$PG_DIR" && "$@")
    elif command -v runuser >/dev/null 2>&1; then
        (cd "$PG_DIR" && runuser -u postgres -- "$@")
    else
        (cd "$PG_DIR" && su postgres -s /bin/bash -c "$(printf '%q ' "$@")")
    fi
}

# pg_stat PID: the process's state, parent and process group ("S 1 1"), from
# /proc; nothing when there is no such process.
pg_stat() { sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1-3; }

# pg_alive PID: PID is a live process (a zombie is not).
pg_alive() {
    local st
    [ -n "${1:-}" ] || return 1
    st=$(pg_stat "$1")
    [ -n "$st" ] && [ "${st%% *}" != Z ]
}

# pg_group PGID: the live processes of process group PGID.
pg_group() {
    cat /proc/[0-9]*/stat 2>/dev/null |
        awk -v g="$1" '{ pid = $1; sub(/^.*\) /, ""); if ($1 != "Z" && $3 == g) print pid }'
}

# pg_cluster_alive: some process of the cluster is still alive.
pg_cluster_alive() {
    [ -n "${PG_PID:-}" ] || return 1
    pg_alive "$PG_PID" || [ -n "$(pg_group "$PG_PID")" ]
}

# pg_signal_cluster SIGNAL: SIGNAL to every process of the cluster: the
# postmaster's process group, which it leads (pg_start starts it in a session
# of its own), and which its backends outlive for a while when it is killed.
pg_signal_cluster() {
    local st
    [ -n "${PG_PID:-}" ] || return 1
    st=$(pg_stat "$PG_PID")
    if [ -z "$st" ] || [ "${st##* }" = "$PG_PID" ]; then
        kill -"$1" -- -"$PG_PID" 2>/dev/null
    else
        kill -"$1" "$PG_PID" 2>/dev/null
    fi
}

# pg_wait_gone SECONDS: waits until no process of the cluster is left.
pg_wait_gone() {
    local i
    for i in $(seq 1 $(($1 * 10))); do
        pg_cluster_alive || return 0
        sleep 0.1
    done
    return 1
}

# pg_start DIR: a cluster in DIR (data in DIR/data, socket DIR/.s.PGSQL.PORT,
# log DIR/postgres.log), made there the first time (initdb, the role, the
# database) and started again on the same port with the same data when DIR
# already holds one. Exports PG_DIR, PG_DATA, PG_LOG, PG_PORT, PG_PID, PG_USER
# and PG_URI; the cluster is stopped by stop_all (it_cleanup pg_stop).
pg_start() {
    local dir=$1 fresh=0 i
    for i in initdb postgres psql; do
        [ -x "$PG_BIN/$i" ] || { it_log "pg: no $PG_BIN/$i (Debian: apt-get install postgresql-15)"; return 1; }
    done
    mkdir -p "$dir" || return 1
    PG_DIR=$(cd "$dir" && pwd)
    PG_DATA=$PG_DIR/data
    PG_LOG=$PG_DIR/postgres.log
    PG_USER=$(id -un) || return 1
    it_cleanup pg_stop
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
        fresh=1
        # Any number names the socket: nothing binds TCP. One apart from other
        # runs' all the same (the shared memory keys derive from it).
        for i in $(seq 1 100); do
            PG_PORT=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
            [ -e "$PG_DIR/.s.PGSQL.$PG_PORT" ] || break
        done
        # A socket path is at most 107 bytes.
        if [ ${#PG_DIR} -gt 90 ]; then
            it_log "pg: $PG_DIR is too long a path for a Unix socket (TMPDIR?)"
            return 1
        fi
        if [ "$(id -u)" -eq 0 ]; then
            getent passwd postgres >/dev/null || { it_log "pg: no postgres user"; return 1; }
            chown postgres: "$PG_DIR" || return 1
            # The postgres user reaches PG_DIR through directories made 0700
            # (mktemp -d): they let it pass, not read.
            local up=$PG_DIR
            while up=$(dirname "$up") && [ "$up" != / ]; do
                [ $((0$(stat -c %a "$up") & 1)) -eq 1 ] || chmod o+x "$up" || return 1
            done
        fi
        chmod 0700 "$PG_DIR"
        # The bootstrap superuser is named like the calling user: the daemon
        # connects as that user by default (libpq), the server runs as postgres.
        if ! pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" --auth=trust -E UTF8 \
            --locale=C --no-sync >"$PG_DIR/initdb.log" 2>&1; then
            it_log "pg: initdb failed:"
            tail -n 20 "$PG_DIR/initdb.log" >&2
            return 1
        fi
        cat >>"$PG_DATA/postgresql.conf" <<EOF
# pg.sh: a throwaway cluster for tests
listen_addresses = ''
unix_socket_directories = '$PG_DIR'
port = $PG_PORT
fsync = off
shared_buffers = 16MB
max_connections = 200
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
        printf '%s\n' "$PG_PORT" >"$PG_DIR/port"
    else
        PG_PORT=$(cat "$PG_DIR/port") || return 1
    fi
    export PG_DIR PG_DATA PG_LOG PG_PORT PG_USER
    export PG_URI="postgresql:///imgmeta?host=$PG_DIR&port=$PG_PORT"
    pg_run_postmaster || return 1
    if [ "$fresh" = 1 ]; then
        pg_psql_db postgres "CREATE DATABASE imgmeta OWNER \"$PG_USER\"" || return 1
    fi
}

# pg_run_postmaster: starts the postmaster in a session of its own and waits
# until it says it is ready (postmaster.pid), at most 60 s; sets PG_PID.
# It is the test's own child, not pg_ctl's: a postmaster killed is reaped, and
# its PID left in postmaster.pid is no process's (an orphan left a zombie, on a
# machine whose init does not reap, would keep the next start from taking the
# data directory: the server takes a zombie's PID for a live postmaster).
pg_run_postmaster() {
    local pid pm i st=""
    if [ "$(id -u)" -eq 0 ]; then
        (cd "$PG_DIR" && exec setpriv --reuid=postgres --regid=postgres --init-groups \
            setsid -w "$PG_BIN/postgres" -D "$PG_DATA" >>"$PG_LOG" 2>&1) &
    else
        (cd "$PG_DIR" && exec setsid -w "$PG_BIN/postgres" -D "$PG_DATA" >>"$PG_LOG" 2>&1) &
    fi
    pid=$!
    PG_PID=$pid
    export PG_PID
    for i in $(seq 1 600); do
        # postmaster.pid: line 1 the PID (setsid's child when setsid had to
        # fork: under job control), line 8 the status
        pm=$(sed -n 1p "$PG_DATA/postmaster.pid" 2>/dev/null)
        if [ -n "$pm" ] && { [ "$pm" = "$pid" ] || [ "$(pg_stat "$pm" | cut -d' ' -f2)" = "$pid" ]; }; then
            st=$(sed -n 8p "$PG_DATA/postmaster.pid" 2>/dev/null)
            if [ "${st%% *}" = ready ]; then
                PG_PID=$pm
                return 0
            fi
        fi
        pg_alive "$pid" || break
        sleep 0.1
    done
    it_log "pg: the server did not start (PID $pid, status: ${st:-none}); its log:"
    tail -n 20 "$PG_LOG" >&2
    pg_stop
    return 1
}

# pg_stop: a fast shutdown (SIGINT, as pg_ctl -m fast sends: sessions are
# cut, the data is checkpointed), SIGKILL to the cluster when it has not
# stopped in 30 s. A paused cluster is resumed first. Nothing to do when it
# is not running.
pg_stop() {
    [ -n "${PG_PID:-}" ] || return 0
    pg_signal_cluster CONT
    pg_alive "$PG_PID" && kill -INT "$PG_PID" 2>/dev/null
    if ! pg_wait_gone 30; then
        it_log "pg: the cluster (PID $PG_PID) did not stop in 30 s: SIGKILL"
        pg_signal_cluster KILL
        pg_wait_gone 10 || it_log "pg: processes of the cluster $PG_PID still there"
    fi
    wait "$PG_PID" 2>/dev/null
    return 0
}

# pg_kill [SIGNAL]: SIGNAL (default KILL) to every process of the cluster,
# then waits until they are all gone (at most 10 s): the database crashes.
# pg_restart (or pg_start PG_DIR) brings it back after crash recovery.
pg_kill() {
    local sig=${1:-KILL}
    pg_signal_cluster CONT
    pg_signal_cluster "$sig"
    # the postmaster is this shell's child: reaped here, without bash's
    # "Killed" notice
    case $sig in KILL | 9 | SIGKILL) wait "$PG_PID" 2>/dev/null ;; esac
    pg_wait_gone 10
}

# pg_pause / pg_resume: SIGSTOP / SIGCONT to every process of the cluster
# (a database that hangs: connections are accepted, nothing is answered).
pg_pause() { pg_signal_cluster STOP; }
pg_resume() { pg_signal_cluster CONT; }

# pg_restart: pg_stop, then pg_start on the same directory (the same port,
# socket and data); PG_PID is the new postmaster's.
pg_restart() {
    pg_stop
    pg_start "$PG_DIR"
}

# pg_psql [SQL...]: each SQL argument (one psql -c each, so one transaction
# each), or the SQL on stdin when none, in the database imgmeta as the daemon
# connects (PG_URI): psql -XAtq, ON_ERROR_STOP=1 (the first error stops it:
# exit status 1 for an argument, 3 for stdin).
pg_psql() { pg_psql_db imgmeta "$@"; }

# pg_psql_db DATABASE [SQL...]: pg_psql in another database of the cluster.
pg_psql_db() {
    local db=$1 args=() sql
    shift
    for sql in "$@"; do args+=(-c "$sql"); done
    [ $# -eq 0 ] && args=(-f -)
    "$PG_BIN/psql" -X -A -t -q -v ON_ERROR_STOP=1 \
        -d "postgresql:///$db?host=$PG_DIR&port=$PG_PORT" "${args[@]}"
}
