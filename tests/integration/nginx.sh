# nginx.sh - nginx as the load balancer in front of several imgmeta replicas,
# for the integration tests (bash; source it after lib.sh, do not run it).
#
#   . tests/integration/lib.sh; . tests/integration/nginx.sh
#   nginx_start "$IT_DIR/nginx" "$PORT_A" "$PORT_B"
#   nginx_curl -s "$NGINX_URL/images/python/3.7-slim"
#   nginx_stop                   # also done by stop_all and at exit
#
# One nginx process (master_process off: no workers, so the round robin is one
# sequence, A B A B..., and the process is the PID to stop; as root it stays
# root and reads and writes DIR, which no `user` is needed for), in the
# foreground, recorded by PID. It listens on the Unix socket DIR/nginx.sock:
# no port to pick, so runs side by side never collide; curl reaches it with
# --unix-socket (nginx_curl). Every request goes to the next replica in turn
# (127.0.0.1:PORT each); a replica that fails is never set aside (max_fails=0)
# and, by default, not retried elsewhere either (proxy_next_upstream off): the
# client sees that replica's own answer, 502 when it is down, 504 when it
# hangs past the timeout.
# Each answer says which replica gave it: header X-Upstream-Addr
# (127.0.0.1:PORT; "A, B" when one was tried after another), and so does the
# access log NGINX_LOG, one line a request:
#   UPSTREAM_ADDR STATUS "REQUEST LINE" REQUEST_TIME
# The configuration, error.log, nginx.stderr and temporary files are in DIR
# too.

# nginx_start [--next-upstream] [--tcp] [--timeout SECONDS] DIR PORT...:
#   --next-upstream  a request a replica could not answer (connection refused
#                    or cut, a timeout) goes to the next one (proxy_next_upstream
#                    error timeout; for GET and HEAD only, as nginx does)
#   --tcp            listen on a loopback TCP port besides (probed with
#                    free_port, so tried again on another when that one was
#                    taken meanwhile): NGINX_PORT, NGINX_URL for any client
#   --timeout S      proxy connect/send/read timeout (default 60)
# Exports NGINX_DIR, NGINX_PID, NGINX_SOCK, NGINX_LOG, NGINX_URL (without
# --tcp, http://nginx.invalid: a base for nginx_curl only, that nothing else
# can reach by mistake) and NGINX_PORT (empty without --tcp). Waits until
# nginx answers (a location of its own, so no replica sees the probe).
nginx_start() {
    local next=off tcp=0 timeout=60 dir port try listen upstreams err
    while [ $# -gt 0 ]; do
        case $1 in
        --next-upstream) next="error timeout" ;;
        --tcp) tcp=1 ;;
        --timeout) timeout=$2; shift ;;
        *) break ;;
        esac
        shift
    done
    if [ $# -lt 2 ]; then
        it_log "usage: nginx_start [--next-upstream] [--tcp] [--timeout S] DIR PORT..."
        return 2
    fi
    command -v nginx >/dev/null || { it_log "nginx: not installed (Debian: apt-get install nginx)"; return 1; }
    mkdir -p "$1/tmp" || return 1
    dir=$(cd "$1" && pwd)
    shift
    upstreams=""
    for port in "$@"; do
        upstreams="$upstreams        server 127.0.0.1:$port max_fails=0;
"
    done
    NGINX_DIR=$dir
    NGINX_SOCK=$dir/nginx.sock
    NGINX_LOG=$dir/access.log
    if [ ${#NGINX_SOCK} -gt 100 ]; then
        it_log "nginx: $NGINX_SOCK is too long a path for a Unix socket (TMPDIR?)"
        return 1
    fi
    for try in 1 2 3; do
        NGINX_PORT=""
        NGINX_URL=http://nginx.invalid
        listen=""
        if [ "$tcp" = 1 ]; then
            NGINX_PORT=$(free_port) || return 1
            NGINX_URL=http://127.0.0.1:$NGINX_PORT
            listen="listen 127.0.0.1:$NGINX_PORT;"
        fi
        cat >"$dir/nginx.conf" <<EOF
daemon off;
master_process off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    log_format replicas '\$upstream_addr \$status "\$request" \$request_time';
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    upstream imgmeta {
$upstreams    }
    server {
        listen unix:$NGINX_SOCK;
        $listen
        location = /_nginx/ready { return 204; }
        location / {
            access_log $NGINX_LOG replicas;
            proxy_pass http://imgmeta;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_next_upstream $next;
            proxy_connect_timeout ${timeout}s;
            proxy_send_timeout ${timeout}s;
            proxy_read_timeout ${timeout}s;
            add_header X-Upstream-Addr \$upstream_addr always;
        }
    }
}
EOF
        rm -f "$NGINX_SOCK" # left by an nginx killed in DIR before
        err=$dir/error.log
        : >"$err"
        nginx -p "$dir" -c "$dir/nginx.conf" -e "$err" 2>"$dir/nginx.stderr" &
        NGINX_PID=$!
        it_record "$NGINX_PID"
        export NGINX_DIR NGINX_PID NGINX_SOCK NGINX_LOG NGINX_URL NGINX_PORT
        nginx_wait_ready && return 0
        nginx_stop
        # a port taken between the probe and the bind: another one
        [ "$tcp" = 1 ] && grep -q 'Address already in use' "$err" || break
    done
    it_log "nginx: did not start; its error log and stderr:"
    tail -n 20 "$err" "$dir/nginx.stderr" >&2
    return 1
}

# nginx_wait_ready: polls nginx's own location until it answers 204, at most
# IT_WAIT_S seconds; fails early when nginx has died.
nginx_wait_ready() {
    local i
    for i in $(seq 1 $((IT_WAIT_S * 20))); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 --unix-socket "$NGINX_SOCK" \
            http://nginx.invalid/_nginx/ready 2>/dev/null)" = 204 ] && return 0
        kill -0 "$NGINX_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# nginx_curl ARGS...: curl through nginx's socket, URLs under NGINX_URL.
nginx_curl() { curl --unix-socket "$NGINX_SOCK" "$@"; }

# nginx_stop: SIGTERM (nginx's fast shutdown), SIGKILL after 5 s; nothing to
# do when it is not running.
nginx_stop() {
    local i
    [ -n "${NGINX_PID:-}" ] || return 0
    kill -TERM "$NGINX_PID" 2>/dev/null
    for i in $(seq 1 50); do
        kill -0 "$NGINX_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$NGINX_PID" 2>/dev/null
    wait "$NGINX_PID" 2>/dev/null
    IT_PIDS=$(printf '%s\n' $IT_PIDS | grep -vx "$NGINX_PID" | tr '\n' ' ')
    NGINX_PID=""
}
