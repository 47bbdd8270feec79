#!/usr/bin/env bash
# pgharness.sh IMGMETA FIXTURE REGFRONT - the harness for replicas sharing a
# PostgreSQL database behind nginx (ctest "integration.pgharness"), tested on
# its own before the tests that rely on it:
#   (a) pg.sh: a private cluster answers on PG_URI as the daemon will connect
#       (the imgmeta database, the calling user's role, Unix socket only), an
#       advisory lock one session holds is seen from another (pg_locks) and
#       goes with its session, pg_restart keeps the data and the URI, pg_stop
#       leaves no process and no socket
#   (b) nginx.sh: in front of two daemons (each on its own SQLite file), four
#       requests are spread two and two (each daemon's access log, nginx's,
#       X-Upstream-Addr); a replica down answers 502 by default and is passed
#       over with --next-upstream; --tcp listens on a loopback port too
# Prints "N passed, N failed"; exits 1 when anything failed.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
for tool in docker-registry curl jq nginx; do
    command -v "$tool" >/dev/null || { echo "pgharness: needs $tool" >&2; exit 1; }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/pg.sh"
. "$(dirname "${BASH_SOURCE[0]}")/nginx.sh"
lib_init "$1" "$2" "$3"
T0=$(date +%s)

# --- (a) PostgreSQL -----------------------------------------------------------
pg_start "$IT_DIR/pg" || die "cannot start PostgreSQL"
check_eq "(a) SELECT 1" 1 "$(pg_psql 'SELECT 1')"
check_eq "(a) PG_URI is postgresql:///imgmeta?host=PG_DIR&port=PG_PORT" \
    "postgresql:///imgmeta?host=$PG_DIR&port=$PG_PORT" "$PG_URI"
check_eq "(a) libpq on PG_URI alone reaches imgmeta as the calling user, a superuser" \
    "imgmeta $(id -un) on" \
    "$("$PG_BIN/psql" -XAtq "$PG_URI" -c "SELECT current_database(), current_user, current_setting('is_superuser')" | tr '|' ' ')"
check_eq "(a) no TCP (listen_addresses empty), the socket in PG_DIR" "|yes" \
    "$(pg_psql 'SHOW listen_addresses')|$(test -S "$PG_DIR/.s.PGSQL.$PG_PORT" && echo yes)"
check_eq "(a) PG_PID is the postmaster (postmaster.pid), leading its process group" \
    "$PG_PID $PG_PID" "$(head -n 1 "$PG_DATA/postmaster.pid") $(pg_stat "$PG_PID" | cut -d' ' -f3)"

# One session takes the lock and keeps it (psql reading a FIFO held open).
mkfifo "$IT_DIR/lock.sql"
"$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 "$PG_URI" <"$IT_DIR/lock.sql" >"$IT_DIR/lock.out" 2>&1 &
LOCK_PSQL=$!
it_record "$LOCK_PSQL"
exec 7>"$IT_DIR/lock.sql"
echo "SELECT pg_advisory_lock(4242); SELECT 'locked';" >&7
for i in $(seq 1 100); do
    grep -q '^locked$' "$IT_DIR/lock.out" && break
    sleep 0.05
done
check_eq "(a) an advisory lock held by one session is in pg_locks, seen from another" 1 \
    "$(pg_psql "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242
                AND objsubid = 1 AND granted AND pid <> pg_backend_pid()")"
check_eq "(a) ... which cannot take it" f "$(pg_psql 'SELECT pg_try_advisory_lock(4242)')"
exec 7>&- # end of input: psql quits, its session ends
wait "$LOCK_PSQL"
check_eq "(a) ... and takes it once that session has ended" t \
    "$(pg_psql 'SELECT pg_try_advisory_lock(4242)')"

pg_psql 'CREATE TABLE kept (n int)' 'INSERT INTO kept VALUES (7)'
OLD_PID=$PG_PID OLD_URI=$PG_URI
pg_restart || die "cannot restart PostgreSQL"
check "(a) pg_restart: a new postmaster, the old one gone" \
    test "$PG_PID" != "$OLD_PID" -a -z "$(pg_group "$OLD_PID")"
check_eq "(a) ... on the same URI, with the data" "$OLD_URI 7" "$PG_URI $(pg_psql 'SELECT n FROM kept')"
pg_stop
check "(a) pg_stop: no process of the cluster left" bash -c "! kill -0 $PG_PID 2>/dev/null"
check_eq "(a) ... nor its socket" no "$(test -e "$PG_DIR/.s.PGSQL.$PG_PORT" && echo yes || echo no)"

# --- (b) nginx before two replicas --------------------------------------------
start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
start_front || die "cannot start regfront"

# replica NAME: a daemon on IT_DIR/NAME.db, its output in IT_DIR/NAME.log;
# sets NAME_PORT and NAME_PID.
replica() {
    : >"$IT_DIR/$1.log"
    "$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/$1.db" \
        --mirror "docker.io=$FRONT_URL" >"$IT_DIR/$1.log" 2>&1 &
    printf -v "$1_PID" %s $!
    it_record "$!"
    daemon_ready "$IT_DIR/$1.log" "$!" || return 1
    printf -v "$1_PORT" %s "$DAEMON_PORT"
}
replica A || die "cannot start imgmeta A"
replica B || die "cannot start imgmeta B"
nginx_start "$IT_DIR/nginx" "$A_PORT" "$B_PORT" || die "cannot start nginx"

IMG=/images/python/3.7-slim
codes="" addrs=""
for i in 1 2 3 4; do
    codes="$codes $(nginx_curl -s -o /dev/null -D "$IT_DIR/h$i" -w '%{http_code}' --max-time 30 \
        "$NGINX_URL$IMG")"
    addrs="$addrs $(tr -d '\r' <"$IT_DIR/h$i" | sed -n 's/^X-Upstream-Addr: //Ip')"
done
check_eq "(b) 4 requests through nginx: 200 each" " 200 200 200 200" "$codes"
served() { grep 'event=access' "$IT_DIR/$1.log" | grep -c "path=\"$IMG\""; }
check_eq "(b) ... 2 answered by each replica (their access logs)" "2 2" "$(served A) $(served B)"
check_eq "(b) ... and so say nginx's access log and X-Upstream-Addr" "2 2 2 2" \
    "$(grep -c "^127.0.0.1:$A_PORT 200 " "$NGINX_LOG") $(grep -c "^127.0.0.1:$B_PORT 200 " "$NGINX_LOG") \
$(echo "$addrs" | grep -o "127.0.0.1:$A_PORT" | wc -l) $(echo "$addrs" | grep -o "127.0.0.1:$B_PORT" | wc -l)"

# B down: by default its turn is a 502 (nginx's own answer, nothing retried).
kill -TERM "$B_PID"
wait "$B_PID"
codes=""
for i in 1 2; do
    codes="$codes $(nginx_curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$NGINX_URL$IMG")"
done
check_eq "(b) one replica down, no retry: one 200, one 502" "200 502" \
    "$(echo $codes | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')"
nginx_stop
nginx_start --next-upstream --tcp "$IT_DIR/nginx" "$A_PORT" "$B_PORT" || die "cannot start nginx"
codes=""
for i in 1 2; do
    codes="$codes $(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$NGINX_URL$IMG")"
done
check_eq "(b) --next-upstream: both 200, on its TCP port (--tcp)" " 200 200" "$codes"
check_eq "(b) ... the socket answers too" 200 \
    "$(nginx_curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$NGINX_URL/healthz")"
N_PID=$NGINX_PID
nginx_stop
check "(b) nginx_stop: nginx is gone" bash -c "! kill -0 $N_PID 2>/dev/null"

it_log "took $(($(date +%s) - T0)) s"
finish
