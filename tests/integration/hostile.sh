#!/usr/bin/env bash
# hostile.sh IMGMETA FIXTURE REGFRONT - malformed and hostile requests against
# the daemon (ctest "integration.hostile"; SECURITY.md).
#
# A table of requests (bad references, overlong paths and headers,
# percent-encoding tricks, "..", NUL and CRLF, unknown and repeated
# parameters, huge query strings, wrong methods, bodies, broken HTTP, slow and
# incomplete requests). Each row names the answers the contract allows (a
# status, several "400|404", or 000 = the connection was closed without an
# answer); no row may get a 5xx. A path, query or header field that is not
# what it decodes to (a control character, NUL included, as it is or
# percent-encoded; a bad escape; invalid UTF-8; an encoded '/' in the path)
# must get the JSON 400 invalid_request ("refused" rows). After the table the
# daemon must be alive and still answer the fixture image exactly as before
# the table (same bytes), and /healthz must be 200.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"


start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
start_front --bearer || die "cannot start regfront"
start_daemon || die "cannot start imgmeta serve"
HOST=127.0.0.1
IMAGE=/images/python/3.7-slim

BASE_JSON=$IT_DIR/base.json
[ "$(curl -s -o "$BASE_JSON" -w '%{http_code}' --max-time 60 "$DAEMON_URL$IMAGE")" = 200 ] ||
    die "the fixture image does not answer 200 before the table"

# judge NAME ALLOWED GOT: passes when GOT is one of ALLOWED ("400|404"). A
# 500, 502, 503 or 504 never passes.
judge() {
    local name=$1 allowed=$2 got=$3
    if [[ "$got" =~ ^($allowed)$ ]] && [[ ! "$got" =~ ^50[0-4]$ ]]; then
        it_pass "$name -> $got"
    else
        it_fail "$name"
        printf '     allowed %s, got %s\n' "$allowed" "$got"
    fi
}

# req CURL-ARGS...: one request ("@PATH" is relative to the daemon); the body
# in $IT_DIR/out, the status (000: no answer) on stdout.
req() {
    local a args=() got
    for a in "$@"; do
        if [[ "$a" == @/* ]]; then args+=("$DAEMON_URL${a#@}"); else args+=("$a"); fi
    done
    got=$(curl -s -o "$IT_DIR/out" -w '%{http_code}' --max-time 10 "${args[@]}" 2>/dev/null)
    printf '%s' "${got:-000}"
}

# c NAME ALLOWED CURL-ARGS...
c() {
    local name=$1 allowed=$2
    shift 2
    judge "$name" "$allowed" "$(req "$@")"
}

# is_refusal STATUS BODY-FILE: 400 with the JSON error invalid_request.
is_refusal() {
    [ "$1" = 400 ] && jq -e '.error.code == "invalid_request"' "$2" >/dev/null 2>&1
}
refusal_seen() { # refusal_seen NAME STATUS BODY-FILE
    if is_refusal "$2" "$3"; then
        it_pass "$1 -> 400 invalid_request"
    else
        it_fail "$1"
        printf '     want 400 invalid_request, got %s: %s\n' "$2" "$(head -c 160 "$3" 2>/dev/null)"
    fi
}

# refused NAME CURL-ARGS...: the request gets 400 invalid_request.
refused() {
    local name=$1 got
    shift
    got=$(req "$@")
    refusal_seen "$name" "$got" "$IT_DIR/out"
}

# same NAME CURL-ARGS...: 200 with exactly the baseline JSON (ignored extras).
same() {
    local name=$1 got
    shift
    got=$(curl -s -o "$IT_DIR/out" -w '%{http_code}' --max-time 10 "$@" 2>/dev/null)
    if [ "$got" = 200 ] && cmp -s "$BASE_JSON" "$IT_DIR/out"; then
        it_pass "$name -> 200, same answer"
    else
        it_fail "$name"
        printf '     want 200 with the baseline answer, got %s\n' "$got"
    fi
}

# rawsend BYTES PRINTF-FORMAT: sends the bytes over a fresh connection and
# reads at most BYTES of the answer, for at most 3 s, into $IT_DIR/raw.out;
# prints the status of its first line, or 000. The body is in $IT_DIR/raw.body.
rawsend() {
    local got
    timeout 3 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 0
        printf -- "$2" >&3
        head -c "$3" <&3' "$HOST" "$DAEMON_PORT" "$2" "$1" >"$IT_DIR/raw.out" 2>/dev/null
    tr -d '\r' <"$IT_DIR/raw.out" | sed '1,/^$/d' >"$IT_DIR/raw.body"
    got=$(head -n 1 "$IT_DIR/raw.out" | sed -n 's#^HTTP/1\.[01] \([0-9][0-9][0-9]\).*#\1#p')
    printf '%s' "${got:-000}"
}

# raw NAME ALLOWED PRINTF-FORMAT: the status the bytes get, judged.
raw() {
    judge "$1" "$2" "$(rawsend 200 "$3")"
}

# raw_refused NAME PRINTF-FORMAT: the bytes (a request that closes its
# connection) get 400 invalid_request.
raw_refused() {
    local got
    got=$(rawsend 4096 "$2")
    refusal_seen "$1" "$got" "$IT_DIR/raw.body"
}

long() { head -c "$1" /dev/zero | tr '\0' "${2:-a}"; }

# --- bad references ----------------------------------------------------------------
c "no reference" "400|404" @/images/
c "missing tag" 400 @/images/python
c "trailing slash" "400|404" @/images/python/
c "uppercase repository" 400 @/images/Python/3.7-slim
c "empty component" 400 @/images//python/3.7-slim
c "double colon" 400 "@/images/python/3.7-slim::"
c "bad digest hex" 400 "@/images/python@sha256:zzzz"
c "short digest" 400 "@/images/python@sha256:$(long 63 a)"
c "unknown digest algorithm" 400 "@/images/python@md5:0123456789abcdef0123456789abcdef"
c "tag starting with -" 400 @/images/python/-x
c "tag starting with ." 400 @/images/python/.x
c "tag of 129 characters" 400 "@/images/python/$(long 129 t)"
c "name of 300 characters" 400 "@/images/$(long 300 a)/1"
c "leading underscore" 400 @/images/_python/1
c "trailing separator" 400 @/images/python_/1
c "encoded space in tag" 400 "@/images/python/3.7%20slim"
refused "encoded NUL in tag" "@/images/python/3.7%00slim"
# the home page's form: GET /images?ref= reads a reference by the same grammar
c "form: no ref" 400 "@/images"
c "form: empty ref" 400 "@/images?ref="
c "form: markup as ref" 400 "@/images?ref=%3Cscript%3Ealert(1)%3C/script%3E"
c "form: quote break-out as ref" 400 "@/images?ref=%22%3E%3Cimg%20src=x%20onerror=alert(1)%3E"
c "form: ref of 700 characters" 400 "@/images?ref=$(long 700 a)"
c "form: absolute URL as ref" 400 "@/images?ref=https://evil.test/x"
refused "form: CRLF in ref" "@/images?ref=python%0d%0aLocation:%20//evil.test"
refused "encoded CRLF in tag" "@/images/python/3.7%0d%0aX-Injected:%201"
if grep -qi '^x-injected' "$IT_DIR/out" 2>/dev/null; then it_fail "CRLF reflected as a header"; fi
refused "encoded ../ traversal" "@/images/..%2f..%2fetc%2fpasswd/x"
c "literal ../ traversal" "400|404" --path-as-is "@/images/../../etc/passwd"
c "dot-dot tag" "400|404" --path-as-is @/images/python/..
c "dot component" "400|404" --path-as-is @/images/./python/3.7-slim
c "encoded dot-dot" "400|404" "@/images/%2e%2e/%2e%2e/x"
c "double-encoded slash" 400 "@/images/python%252F3.7-slim"
refused "invalid UTF-8" "@/images/python/3.7-slim%ff"
c "non-ASCII name" 400 "@/images/pyth%C3%B6n/1"
refused "broken escape" "@/images/python/3.7-slim%"
c "tag and bad digest" 400 "@/images/python:3.7-slim@sha256:bad"
c "digest only" 400 "@/images/@sha256:$(long 64 a)"
c "tag only" 400 "@/images/:tag"
c "port out of range" "400|403" "@/images/localhost:99999/x/y"
c "IPv6 literal registry" "400|403" "@/images/[::1]:5000/x/y"
c "userinfo in registry" "400|403" "@/images/user:pw@host/x/y"
c "URL as reference" "400|403|404" --path-as-is "@/images/http://evil.example/x/y"
c "encoded @ in registry" "400|403" "@/images/evil.example%40ghcr.io/x/y"
c "registry with @" 400 "@/images/ghcr.io:443@evil/x"
c "unknown route" 404 @/etc/passwd
c "route prefix trick" 404 @/imagesX/python/3.7-slim
c "no path" "400|404" --request-target "*" "@/"

# --- percent-encoding that decodes to the plain reference: the same answer ------
same "encoded letter in name" "$DAEMON_URL/images/%70ython/3.7-slim"
same "encoded letters in name and tag" "$DAEMON_URL/images/%70%79thon/3%2E7-slim"
same "ignored values with an encoded slash and a plus" \
    "$DAEMON_URL$IMAGE?x=linux%2Famd64&y=a+b%2B&view=full"

# --- bytes that decode to something else than they say: 400 invalid_request ------
# libmicrohttpd decodes the path in place and cuts it at the first NUL: before
# the fix, /images/python/3.7-slim%00 was served as python:3.7-slim.
refused "encoded NUL after the tag (served as the image before)" --path-as-is "@$IMAGE%00"
refused "encoded NUL, then more" --path-as-is "@$IMAGE%00.json"
refused "encoded NUL in the name" --path-as-is "@/images/pyth%00on/3.7-slim"
refused "encoded NUL on /healthz" --path-as-is "@/healthz%00"
refused "encoded CR LF after the tag" --path-as-is "@$IMAGE%0d%0a"
refused "encoded LF" --path-as-is "@$IMAGE%0A"
refused "encoded tab" --path-as-is "@$IMAGE%09"
refused "encoded DEL" --path-as-is "@$IMAGE%7f"
refused "encoded 0x1f" --path-as-is "@$IMAGE%1F"
# decoded once: %2500 is the text "%00", not a NUL; never the image
c "double-encoded NUL" 400 --path-as-is "@$IMAGE%2500"
check_eq "double-encoded NUL: the reference is refused as written, not decoded twice" \
    invalid_reference "$(jq -r .error.code "$IT_DIR/out" 2>/dev/null)"
c "double-encoded NUL in the name" 400 --path-as-is "@/images/pyth%2500on/3.7-slim"
c "double-encoded slash, decoded once" 400 --path-as-is "@/images/library%252Fpython/3.7-slim"
# an encoded slash never becomes a path separator
refused "encoded slash between name and tag" --path-as-is "@/images/python%2F3.7-slim"
refused "encoded slash, lower case" --path-as-is "@/images/python%2f3.7-slim"
refused "encoded slash in the repository" --path-as-is "@/images/library%2Fpython/3.7-slim"
refused "encoded slash in a registry path" --path-as-is "@/images/docker.io%2Flibrary%2Fpython/3.7-slim"
# overlong and other invalid UTF-8
refused "overlong dot (%C0%AE)" --path-as-is "@/images/python/%C0%AE%C0%AE/x"
refused "overlong NUL (%C0%80)" --path-as-is "@$IMAGE%C0%80"
refused "overlong slash (%E0%80%AF)" --path-as-is "@/images/python%E0%80%AF3.7-slim"
refused "overlong slash in four bytes" --path-as-is "@/images/python%F0%80%80%AF3.7-slim"
refused "UTF-16 surrogate (%ED%A0%80)" --path-as-is "@$IMAGE%ED%A0%80"
refused "cut UTF-8 sequence" --path-as-is "@/images/pyth%C3/3.7-slim"
refused "raw invalid UTF-8 byte" --path-as-is "@$IMAGE$(printf '\xff')"
# bad escapes
refused "lone % in the name" --path-as-is "@/images/py%thon/3.7-slim"
refused "lone % at the end" --path-as-is "@$IMAGE%"
refused "half an escape at the end" --path-as-is "@$IMAGE%4"
refused "escape %G1" --path-as-is "@/images/python/3.7-slim%G1"
refused "escape %1G" --path-as-is "@/images/python/%1G"
refused "escape %%" --path-as-is "@/images/python/3.7-slim%%"
# query values: the same, except that %2F is a plain '/' there
refused "encoded NUL in a platform" "@$IMAGE?platform=linux%00/amd64"
refused "encoded NUL in an unknown parameter" "@$IMAGE?unknown=1&x=%00"
refused "encoded NUL in a parameter name" "@$IMAGE?x%00=1"
refused "encoded NUL after format=json" "@$IMAGE?format=json%00"
refused "encoded CR LF in a value" "@$IMAGE?format=json%0d%0aX-Injected:%201"
refused "encoded tab in a value" "@$IMAGE?view=full%09"
refused "encoded DEL in a value" "@$IMAGE?x=%7F"
refused "overlong UTF-8 in a value" "@$IMAGE?x=%C0%AE"
refused "overlong NUL in a value" "@$IMAGE?x=%C0%80"
refused "invalid UTF-8 in a value" "@$IMAGE?unknown=1&x=%ff"
refused "lone % in a value" "@$IMAGE?x=%"
refused "escape %G1 in a value" "@$IMAGE?x=%G1"
refused "on the tag list too" "@/repositories/python/tags?last=%00"
same "double-encoded NUL in an unknown parameter is text" "$DAEMON_URL$IMAGE?x=%2500"
c "a Markdown request's refusal is text" 400 "@$IMAGE?format=markdown&x=%00"
check "a Markdown request's refusal is text: the message, not JSON" \
    grep -q 'decodes to a control character' "$IT_DIR/out"
# literal control bytes (curl would encode them: sent as they are)
raw_refused "literal NUL after the tag" \
    "GET $IMAGE\0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw_refused "literal NUL, then a query" \
    "GET $IMAGE\0?format=json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw_refused "literal NUL in a query value" \
    "GET $IMAGE?format=json\0x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw_refused "literal 0x01 in the path" \
    "GET $IMAGE\001 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw_refused "literal tab in the path" \
    "GET $IMAGE\t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw_refused "literal CR in the path" \
    "GET $IMAGE\rX HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw_refused "literal DEL in the path" \
    "GET $IMAGE\x7f HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw_refused "literal escape byte in a query value" \
    "GET $IMAGE?x=\x1b[2J HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw_refused "literal tab in a query value" \
    "GET $IMAGE?view=full\t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
# header fields: HTAB is allowed in a value, every other byte below 0x20 and
# DEL are not (libmicrohttpd passes them on, and cuts a value at a NUL
# without a word: both refused here)
same "tab in a header value (allowed)" -H "$(printf 'X-Tab: a\tb')" "$DAEMON_URL$IMAGE"
refused "0x01 in a header value" -H "$(printf 'X-Ctl: a\001b')" "@$IMAGE"
refused "escape byte in Accept" -H "$(printf 'Accept: text/markdown\x1b')" "@$IMAGE"
refused "DEL in a header value" -H "$(printf 'X-Del: a\x7fb')" "@$IMAGE"
raw_refused "bare CR in a header value" \
    "GET $IMAGE HTTP/1.1\r\nHost: x\r\nX-Cr: a\rb\r\nConnection: close\r\n\r\n"
raw_refused "NUL in a header value" \
    "GET $IMAGE HTTP/1.1\r\nHost: x\r\nX-Nul: a\0b\r\nConnection: close\r\n\r\n"
raw_refused "NUL ending a header value" \
    "GET $IMAGE HTTP/1.1\r\nHost: x\r\nX-Nul: a\0\0\r\nConnection: close\r\n\r\n"
raw_refused "NUL in Accept, the last field" \
    "GET $IMAGE HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAccept: application/json\0x\r\n\r\n"
raw_refused "NUL in the Host value" \
    "GET $IMAGE HTTP/1.1\r\nHost: x\0y\r\nConnection: close\r\n\r\n"
raw_refused "0x01 in a header name" \
    "GET $IMAGE HTTP/1.1\r\nHost: x\r\nX\001Y: 1\r\nConnection: close\r\n\r\n"
raw "NUL in a header name (refused by libmicrohttpd)" "400|000" \
    "GET $IMAGE HTTP/1.1\r\nHost: x\r\nX\0Y: 1\r\nConnection: close\r\n\r\n"
raw "trailing blanks and empty values (allowed)" 200 \
    "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a \t \r\nX-E:\r\nX-F:   \r\nConnection: close\r\n\r\n"
raw "bare LF line ends (allowed)" 200 "GET /healthz HTTP/1.1\nHost: x\nX-A: a\nConnection: close\n\n"

# --- overlong parts ---------------------------------------------------------------
c "path of 3000 bytes" "400|414" "@/images/$(long 3000 a)/1"
c "path of 70000 bytes" "400|414|431|000" "@/images/$(long 70000 a)/1"
c "query of 10000 bytes" "400|414" "@$IMAGE?x=$(long 10000 b)"
c "query of 100000 bytes" "400|414|431|000" "@$IMAGE?x=$(long 100000 b)"
c "header of 20000 bytes" "400|431" -H "X-Long: $(long 20000 h)" "@$IMAGE"
c "header of 100000 bytes" "400|431|000" -H "X-Long: $(long 100000 h)" "@$IMAGE"
# the largest request within every limit at once fits the connection memory
# (libmicrohttpd's pool per connection): answered, not refused by the library
c "a query of 8000 bytes and a header of 16000 together" 200 \
    -H "X-Long: $(long 16000 h)" "@$IMAGE?x=$(long 8000 b)"
hdrs=()
for i in $(seq 1 300); do hdrs+=(-H "X-H$i: $(long 100 v)"); done
c "300 headers" "400|431|000" "${hdrs[@]}" "@$IMAGE"

# --- parameters --------------------------------------------------------------------
c "format=xml" 400 "@$IMAGE?format=xml"
c "empty format" 400 "@$IMAGE?format="
c "view=everything" 400 "@$IMAGE?view=everything"
c "platform without arch" "400|404" "@$IMAGE?platform=linux"
plats=""
for i in $(seq 1 20); do plats="$plats&platform=linux/amd64"; done
c "20 platform parameters" 400 "@$IMAGE?${plats#&}"
same "unknown parameter ignored" "$DAEMON_URL$IMAGE?unknown=1&x=caf%C3%A9"
same "parameter without value ignored" "$DAEMON_URL$IMAGE?justakey"
c "repeated format" "200|400" "@$IMAGE?format=json&format=markdown"

# --- methods and bodies -----------------------------------------------------------
for m in POST PUT DELETE PATCH OPTIONS TRACE PROPFIND FOOBAR; do
    c "method $m" "405|413" -X "$m" "@$IMAGE"
done
c "CONNECT" "400|405|000" -X CONNECT "@$IMAGE"
c "POST with a body" "405|413" --data "x=1" "@$IMAGE"
c "GET with a body" 413 -X GET --data "hello" "@$IMAGE"
c "GET with a chunked body" 413 -X GET -H "Transfer-Encoding: chunked" --data "hello" "@$IMAGE"
raw "negative Content-Length" "400|413|000" \
    "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\nConnection: close\r\n\r\n"
raw "huge Content-Length" "400|413|000" \
    "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\nConnection: close\r\n\r\n"

# --- broken HTTP ---------------------------------------------------------------------
raw "garbage request line" "400|000" "HELLO THERE\r\n\r\n"
raw "HTTP/0.9 request" "400|505|000" "GET /healthz\r\n\r\n"
raw "HTTP/2.0 over HTTP/1" "400|505|000" "GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n"
raw "NUL in the request line" "400|404|000" "GET /heal\0thz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw "CRLF injection in the target" "400|404|000" \
    "GET /images/python/3.7\r\nX-Evil: 1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
# RFC 9112, section 3.2: HTTP/1.1 needs exactly one Host; the 400 is the
# service's JSON error (rawbody checks the body too).
raw "missing Host in HTTP/1.1" 400 "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n"
raw "missing Host, image route" 400 "GET $IMAGE HTTP/1.1\r\nConnection: close\r\n\r\n"
raw "missing Host, /metrics" 400 "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n"
raw "two Host headers" 400 "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"
raw "two Host headers in HTTP/1.0" 400 "GET /healthz HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n"
raw "HTTP/1.0 without Host (allowed)" 200 "GET /healthz HTTP/1.0\r\n\r\n"
raw "empty Host (allowed)" 200 "GET /healthz HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n"
host_error_json() {
    rawsend 4096 "GET /healthz HTTP/1.1\r\nConnection: close\r\n\r\n" >/dev/null
    jq -e '.error.code == "invalid_request" and (.error.message | test("Host"))' \
        "$IT_DIR/raw.body" >/dev/null
}
check "missing Host: the JSON error invalid_request names the Host header" host_error_json
raw "header without colon" "400|200|000" "GET /healthz HTTP/1.1\r\nHost: x\r\nNoColon\r\nConnection: close\r\n\r\n"
raw "obsolete line folding" "400|200|000" \
    "GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\nConnection: close\r\n\r\n"
raw "space before colon" "400|200|000" "GET /healthz HTTP/1.1\r\nHost : x\r\nConnection: close\r\n\r\n"
raw "Content-Length and chunked together" "400|413|200|000" \
    "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n"
raw "absolute-form target elsewhere" "400|404|000" \
    "GET http://169.254.169.254/latest HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
raw "request smuggling prefix" "400|404|413|000" \
    "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 30\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n"
c "Accept with 2000 types" "200|400|406|431" \
    -H "Accept: $(for i in $(seq 1 2000); do printf 'a/b%d,' "$i"; done)text/markdown" "@$IMAGE"
c "garbage If-None-Match" "200|400" -H "If-None-Match: $(long 4000 '"')" "@$IMAGE"
c "Accept with a bad q" "200|400|406" -H "Accept: text/markdown;q=abc" "@$IMAGE"

# --- slow and incomplete requests (bounded: at most ~5 s in all) -----------------------
slow_pids=()
for i in $(seq 1 40); do
    timeout 5 bash -c '
        exec 3<>"/dev/tcp/$0/$1" || exit 0
        printf "GET /healthz HTTP/1.1\r\nHost: x\r\n" >&3
        for j in 1 2 3 4 5 6 7 8 9; do printf "X-Slow-%d: 1\r\n" "$j" >&3; sleep 0.5; done' \
        "$HOST" "$DAEMON_PORT" 2>/dev/null &
    slow_pids+=($!)
done
sleep 1
t0=$(date +%s%N)
got=$(curl -s -o "$IT_DIR/out" -w '%{http_code}' --max-time 5 "$DAEMON_URL$IMAGE")
t1=$(date +%s%N)
if [ "$got" = 200 ] && cmp -s "$BASE_JSON" "$IT_DIR/out" && [ $(((t1 - t0) / 1000000)) -lt 3000 ]; then
    it_pass "40 slowloris connections open: a valid request still answers at once ($(((t1 - t0) / 1000000)) ms)"
else
    it_fail "valid request while 40 slowloris connections are open (got $got)"
fi
for p in "${slow_pids[@]}"; do kill "$p" 2>/dev/null; done
for p in "${slow_pids[@]}"; do wait "$p" 2>/dev/null; done
raw "incomplete request, then silence" "000" "GET /healthz HTTP/1.1\r\nHost: x\r\n"
raw "half a request line" "000" "GET /images/pyth"

# --- the connection limit: beyond it connections are closed, then it recovers ---------
MAIN_URL=$DAEMON_URL
MAIN_PID=$DAEMON_PID
MAIN_PORT=$DAEMON_PORT
start_daemon --db "$IT_DIR/limit.db" --connection-limit 8 || die "cannot start the limited daemon"
LIMIT_PID=$DAEMON_PID
hold_pids=()
for i in $(seq 1 8); do
    timeout 6 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 0; printf "GET /healthz HTTP/1.1\r\n" >&3; sleep 6' \
        "$HOST" "$DAEMON_PORT" 2>/dev/null &
    hold_pids+=($!)
done
sleep 1
got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$DAEMON_URL/healthz")
judge "--connection-limit 8 with 8 held: the 9th connection is refused or closed" "000|503" "${got:-000}"
for p in "${hold_pids[@]}"; do kill "$p" 2>/dev/null; done
for p in "${hold_pids[@]}"; do wait "$p" 2>/dev/null; done
ok_again() {
    local i
    for i in $(seq 1 30); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$DAEMON_URL/healthz")" = 200 ] && return 0
        sleep 0.2
    done
    return 1
}
check "--connection-limit: serves again once the held connections close" ok_again
kill -TERM "$LIMIT_PID"
wait "$LIMIT_PID"
DAEMON_URL=$MAIN_URL
DAEMON_PID=$MAIN_PID
DAEMON_PORT=$MAIN_PORT

# --- descriptors: a connection holds its socket and, while an answer is sent from the
# answers file, a descriptor of that file: the daemon raises its soft limit to match
# --connection-limit (as far as the hard limit allows) ---------------------------------
SOFT_WAS=$(ulimit -Sn)
ulimit -Sn 256
start_daemon --db "$IT_DIR/fds.db" --connection-limit 1000 || die "cannot start the fds daemon"
ulimit -Sn "$SOFT_WAS"
FDS_WANT=$((1000 * 2 + 256)) FDS_HARD=$(ulimit -Hn)
[ "$FDS_HARD" = unlimited ] || [ "$FDS_HARD" -ge "$FDS_WANT" ] || FDS_WANT=$FDS_HARD
check_eq "started with a soft limit of 256 descriptors, --connection-limit 1000: raised to $FDS_WANT" \
    "$FDS_WANT" "$(awk '/^Max open files/ {print $4}' "/proc/$DAEMON_PID/limits")"
kill -TERM "$DAEMON_PID"
wait "$DAEMON_PID"
DAEMON_URL=$MAIN_URL
DAEMON_PID=$MAIN_PID
DAEMON_PORT=$MAIN_PORT

# --- --max-resolutions: a bound on upstream work, cached answers never refused ---------
# A slow front (every request delayed) and --max-resolutions 2: while two
# distinct cold references are being resolved, a third is refused at once
# with 503 busy and Retry-After; a reference already being resolved is joined
# (coalesced), a fresh digest reference answers from the cache, and a stale
# tag is served marked stale rather than refused; the two running resolutions
# finish with 200 and the refused reference resolves once a slot is free.
for t in la lb lc; do
    IT_OUT=$IT_DIR/fx-$t fill_fixture push --tag "$t" >/dev/null || die "cannot push tag $t"
done
MAIN_FRONT=$FRONT_URL
start_front --bearer --delay-ms 1000 || die "cannot start the slow front"
start_daemon --db "$IT_DIR/resolutions.db" --max-resolutions 2 --tag-ttl 1 \
    --max-stale 3600 || die "cannot start the daemon with --max-resolutions 2"
LIM_PID=$DAEMON_PID
get() { # get NAME PATH: status in $IT_DIR/NAME.s, headers .h, body .b
    curl -s -D "$IT_DIR/$1.h" -o "$IT_DIR/$1.b" -w '%{http_code}' --max-time 60 \
        "$DAEMON_URL$2" >"$IT_DIR/$1.s"
}
hdr() { tr -d '\r' <"$IT_DIR/$1.h" | sed -n "s/^$2: //Ip" | tail -n 1; }
get warm "$IMAGE"
get warm_digest "/images/python@$LIST_DIGEST"
check_eq "limits: the fixture and its digest are cached first" "200 200" \
    "$(cat "$IT_DIR/warm.s") $(cat "$IT_DIR/warm_digest.s")"
sleep 2 # --tag-ttl 1: the tag is stale now, the digest reference never is
# in_flight N: wait (at most ~4 s) until N resolutions run upstream.
in_flight() {
    local i
    for i in $(seq 1 200); do
        curl -s "$DAEMON_URL/metrics" | grep -q "^imgmeta_resolutions_in_flight $1\$" && return 0
        sleep 0.02
    done
    return 1
}
# Both at once: whichever worker accepts them, each waits for its registry
# on an upstream thread, not on the worker.
get la /images/python/la &
la_pid=$!
get lb /images/python/lb &
lb_pid=$!
check "limits: two slow resolutions hold both slots" in_flight 2
get stale "$IMAGE"
get digest_hit "/images/python@$LIST_DIGEST"
get lc /images/python/lc
get la2 /images/python/la &
la2_pid=$!
wait "$la_pid" "$lb_pid" "$la2_pid"
check_eq "limits: a third distinct cold reference gets 503 busy with Retry-After" \
    "503 busy 1" "$(cat "$IT_DIR/lc.s") $(jq -r .error.code "$IT_DIR/lc.b") $(hdr lc Retry-After)"
check_eq "limits: the two running resolutions answer 200" "200 200" \
    "$(cat "$IT_DIR/la.s") $(cat "$IT_DIR/lb.s")"
check_eq "limits: a request for a reference being resolved joins it (not refused)" \
    "200 coalesced" "$(cat "$IT_DIR/la2.s") $(hdr la2 X-Imgmeta-Cache)"
check_eq "limits: a cached digest reference answers 200 while saturated" "200 hit" \
    "$(cat "$IT_DIR/digest_hit.s") $(hdr digest_hit X-Imgmeta-Cache)"
check_eq "limits: a stale tag is served marked stale while saturated, not refused" \
    "200 stale true $(jq -r .digest "$IT_DIR/warm.b")" \
    "$(cat "$IT_DIR/stale.s") $(hdr stale X-Imgmeta-Cache) $(jq -r .stale "$IT_DIR/stale.b") $(jq -r .digest "$IT_DIR/stale.b")"
refused=$(curl -s "$DAEMON_URL/metrics" | sed -n 's/^imgmeta_resolutions_refused_total //p')
check "limits: refusals are counted in /metrics ($refused)" [ "${refused:-0}" -ge 2 ]
if [ "$IT_FAILED" -gt 0 ]; then # what the daemon saw, for the failure above
    grep -a 'event=access' "$IT_DIR/daemon.log" | grep -a 'path="/images/python' | tail -n 8
fi
get lc_again /images/python/lc
check_eq "limits: the refused reference resolves once a slot is free" 200 "$(cat "$IT_DIR/lc_again.s")"
kill -TERM "$LIM_PID"
wait "$LIM_PID"
check_eq "limits: the daemon exits 0" 0 "$?"
DAEMON_URL=$MAIN_URL
DAEMON_PID=$MAIN_PID
DAEMON_PORT=$MAIN_PORT
FRONT_URL=$MAIN_FRONT

# --- head-of-line blocking: upstream work never holds a worker's connections ----------
# --threads 1: one libmicrohttpd worker holds every connection. A request that
# waits on a slow registry (every answer delayed 1.5 s) runs on an upstream
# thread while its connection is set aside, so cached answers on other
# connections are served while it waits; with --upstream-threads 1 and
# --upstream-queue 1, the request after the queued one is answered 503 busy at
# once; a client that gives up while its request waits does no harm; SIGTERM
# while a request waits upstream answers it 503 shutting_down and exits 0.
for t in hol hol2 hol3; do
    IT_OUT=$IT_DIR/fx-$t fill_fixture push --tag "$t" >/dev/null || die "cannot push tag $t"
done
start_daemon --db "$IT_DIR/hol.db" --threads 1 || die "cannot start the --threads 1 daemon"
get hol_warm "$IMAGE"
check_eq "hol: the fixture is cached first" 200 "$(cat "$IT_DIR/hol_warm.s")"
check_clean_stop "$DAEMON_PID"
cp "$IT_DIR/daemon.log" "$IT_DIR/hol-fill.log"
start_front --bearer --delay-ms 1500 || die "cannot start the slow front"
start_daemon --db "$IT_DIR/hol.db" --threads 1 --upstream-threads 1 \
    --upstream-queue 1 --shutdown-timeout 0 --log-level debug ||
    die "cannot start the --threads 1 daemon on the slow front"
HOL_PID=$DAEMON_PID
get hol_cold /images/python/hol &
cold_pid=$!
check "hol: the cold reference is being resolved" in_flight 1
warm_ok=0
for i in 1 2 3 4 5; do
    get "hol_w$i" "$IMAGE"
    if [ "$(cat "$IT_DIR/hol_w$i.s")" = 200 ] && cmp -s "$IT_DIR/hol_warm.b" "$IT_DIR/hol_w$i.b"; then
        warm_ok=$((warm_ok + 1))
    fi
done
check "hol: the cold request is still waiting after the warm ones were answered" \
    kill -0 "$cold_pid"
check_eq "hol: 5 warm requests on new connections answer 200 with the cached bytes meanwhile" \
    5 "$warm_ok"
# queued: wait until the daemon has queued N requests for its upstream thread.
queued() {
    local i
    for i in $(seq 1 200); do
        [ "$(grep -ac 'event=upstream_queued' "$IT_DIR/daemon.log")" -ge "$1" ] && return 0
        sleep 0.02
    done
    return 1
}
get hol_join /images/python/hol &
join_pid=$!
check "hol: a second request for it waits in the queue" queued 2
get hol_busy /images/python/hol2
check "hol: the queue is full while the cold request still runs" kill -0 "$cold_pid"
check_eq "hol: one request more than --upstream-queue gets 503 busy with Retry-After" \
    "503 busy 1" "$(cat "$IT_DIR/hol_busy.s") $(jq -r .error.code "$IT_DIR/hol_busy.b") $(hdr hol_busy Retry-After)"
wait "$cold_pid" "$join_pid"
check_eq "hol: the cold and the queued request answer 200" "200 200 $(jq -r .digest "$IT_DIR/hol_warm.b")" \
    "$(cat "$IT_DIR/hol_cold.s") $(cat "$IT_DIR/hol_join.s") $(jq -r .digest "$IT_DIR/hol_cold.b")"
curl -s -o /dev/null --max-time 1 "$DAEMON_URL/images/python/hol3"
check_eq "hol: a client gives up while its request waits upstream" 28 "$?"
get hol_gone "$IMAGE"
check_eq "hol: the daemon serves on after it" 200 "$(cat "$IT_DIR/hol_gone.s")"
get hol3 /images/python/hol3
check_eq "hol: the abandoned reference resolves later" 200 "$(cat "$IT_DIR/hol3.s")"
get hol_stop /images/python/hol2 &
stop_pid=$!
check "hol: a request waits upstream when SIGTERM comes" queued 5
kill -TERM "$HOL_PID"
wait "$HOL_PID"
check_eq "hol: SIGTERM with a request waiting upstream exits 0" 0 "$?"
wait "$stop_pid"
check_eq "hol: the waiting request is answered 503 shutting_down" "503 shutting_down" \
    "$(cat "$IT_DIR/hol_stop.s") $(jq -r .error.code "$IT_DIR/hol_stop.b")"
cp "$IT_DIR/daemon.log" "$IT_DIR/hol.log"
check_no_sanitizer_report "$IT_DIR/hol-fill.log" "$IT_DIR/hol.log"

# SIGTERM while a resolution waits on a registry that answers only after 20 s:
# the request is answered 503 shutting_down at once (--shutdown-timeout 0), its
# upstream thread is given a second more, and then the process exits (0)
# without waiting for the registry; the log says so.
# (every answer of this front takes 20 s, so it is up once it says its port:
# it listens before it says so)
"$REGFRONT" --listen 127.0.0.1:0 --upstream "$REGISTRY_URL" \
    --lastmod "$IT_OUT/lastmod.tsv" --bearer --delay-ms 20000 2>"$IT_DIR/stall-front.stderr" &
STALL_FRONT=$!
it_record "$STALL_FRONT"
STALL_PORT=$(listen_port "$IT_DIR/stall-front.stderr" "$STALL_FRONT") ||
    die "cannot start the stalled front"
FRONT_URL=http://127.0.0.1:$STALL_PORT
start_daemon --db "$IT_DIR/stall.db" --shutdown-timeout 0 --prewarm 0 \
    --log-level debug || die "cannot start the daemon on the stalled front"
STALL_PID=$DAEMON_PID
get stall /images/python/hol &
stall_get=$!
check "stall: the request waits upstream when SIGTERM comes" queued 1
kill -TERM "$STALL_PID"
for i in $(seq 1 100); do
    kill -0 "$STALL_PID" 2>/dev/null || break
    sleep 0.1
done
check "stall: the daemon is gone within 10 s, before the registry answers (20 s)" \
    eval '! kill -0 "$STALL_PID" 2>/dev/null'
kill -KILL "$STALL_PID" 2>/dev/null
wait "$STALL_PID"
check_eq "stall: it exits 0" 0 "$?"
wait "$stall_get"
check_eq "stall: the waiting request is answered 503 shutting_down" "503 shutting_down" \
    "$(cat "$IT_DIR/stall.s") $(jq -r .error.code "$IT_DIR/stall.b")"
check "stall: the log says the stop left one upstream job" \
    grep -q 'event=stop_forced upstream_jobs=1' "$IT_DIR/daemon.log"
cp "$IT_DIR/daemon.log" "$IT_DIR/stall.log"
check_no_sanitizer_report "$IT_DIR/stall.log"
{ kill -KILL "$STALL_FRONT" && wait "$STALL_FRONT"; } 2>/dev/null
DAEMON_URL=$MAIN_URL
DAEMON_PID=$MAIN_PID
DAEMON_PORT=$MAIN_PORT
FRONT_URL=$MAIN_FRONT

# --- the service afterwards --------------------------------------------------------
check "daemon still running" kill -0 "$DAEMON_PID"
c "healthz afterwards" 200 @/healthz
same "the image answers exactly as before the table" "$DAEMON_URL$IMAGE"
got=$(curl -s -o "$IT_DIR/md" -w '%{http_code}' --max-time 10 "$DAEMON_URL$IMAGE?format=markdown")
to_page_digests "$IT_DIR/md" >"$IT_DIR/md.page"
check "the Markdown page still equals the reference page" cmp -s \
    "$IMGMETA_SOURCE_DIR/tests/cases/python-3.7-slim/expected.md" "$IT_DIR/md.page"
# A clean shutdown: exit status 0 and no sanitizer report (leaks are reported
# at exit under ASan).
check_clean_stop "$DAEMON_PID"
check_no_sanitizer_report "$IT_DIR/daemon.log"

finish
