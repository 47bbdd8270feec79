#!/usr/bin/env bash
# valgrind.sh IMGMETA FIXTURE REGFRONT - the daemon under valgrind memcheck for
# an integration run (ctest "valgrind"; SECURITY.md).
#
# Starts the fixture registry and regfront, runs `imgmeta serve` under
# valgrind --leak-check=full, sends a cold resolution, warm hits in JSON and
# Markdown, a 304, invalid requests and a policy refusal, then SIGTERM.
# Passes when every answer is right and valgrind reports no error and no
# definite or indirect leak (its exit status and its log).
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
command -v valgrind >/dev/null || { echo "valgrind: not installed (Debian: valgrind)" >&2; exit 1; }
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
REAL_IMGMETA=$1
lib_init "$1" "$2" "$3"

VGLOG=$IT_DIR/valgrind.log
cat >"$IT_DIR/imgmeta-vg" <<EOF
#!/bin/sh
exec valgrind --quiet --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
    --log-file="$VGLOG" "$REAL_IMGMETA" "\$@"
EOF
chmod +x "$IT_DIR/imgmeta-vg"
IMGMETA=$IT_DIR/imgmeta-vg

start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
start_front --bearer || die "cannot start regfront"
IT_WAIT_S=60 start_daemon --threads 4 || die "cannot start imgmeta serve under valgrind"

U=$DAEMON_URL/images/python/3.7-slim
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 120 "$@"; }
check_eq "cold resolution" 200 "$(code "$U")"
check_eq "warm JSON" 200 "$(code "$U")"
check_eq "warm Markdown" 200 "$(code "$U?format=markdown")"
etag=$(curl -s -D - -o /dev/null "$U" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
check_eq "conditional" 304 "$(code -H "If-None-Match: $etag" "$U")"
check_eq "invalid reference" 400 "$(code "$DAEMON_URL/images/Python/x")"
check_eq "refused by policy" 403 "$(code "$DAEMON_URL/images/localhost:5000/x/y")"
check_eq "unknown route" 404 "$(code "$DAEMON_URL/nope")"

kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
rc=$?
check_eq "valgrind: exit 0 (no error, no definite or indirect leak)" 0 "$rc"
if [ -s "$VGLOG" ]; then
    it_fail "valgrind log is empty"
    head -n 60 "$VGLOG"
else
    it_pass "valgrind log is empty"
fi
finish
