#!/usr/bin/env bash
# api.sh IMGMETA FIXTURE REGFRONT - the HTTP API as a client sees it (ctest "api").
#
# Same harness as run.sh (lib.sh): docker-registry with the python:3.7-slim
# replica (also tagged 3.7, 3 and latest), regfront before it, and one daemon
# with four mirrors: docker.io (the good front), corrupt.test (a front that
# alters manifests: 502), limited.test (a front answering 429: 503 with
# Retry-After) and slow.test (a front slower than the daemon's upstream
# timeout: 504). It checks every route, the negotiation cases, the platform
# filter, 304, every error status, /metrics (promtool), the access log, the
# config file, `imgmeta describe` and the SIGTERM drain; then it lints
# openapi.yaml with redocly and validates every answer it received against
# openapi.yaml with ajv (tests/openapi; tests/openapi/install.sh, run by
# `make test` and `make check`, installs them into the build directory's
# openapi-tools/).
# Prints "N passed, N failed"; IT_KEEP=1 leaves everything running.
set -u

if [ $# -ne 3 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT" >&2
    exit 2
fi
for tool in docker-registry curl jq promtool node; do
    command -v "$tool" >/dev/null || {
        echo "api: needs $tool (cmake/install-deps.sh test installs it)" >&2
        exit 1
    }
done

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
lib_init "$1" "$2" "$3"

OPENAPI_DIR=$IMGMETA_SOURCE_DIR/tests/openapi
R=$IT_DIR/responses
CASES=$IT_DIR/cases.tsv
mkdir -p "$R"
: >"$CASES"


# --- the world ----------------------------------------------------------------------
start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
for t in 3.7 3 latest; do
    "$FIXTURE" retag --registry "$REGISTRY_URL" --repo library/python --from 3.7-slim --tag "$t" \
        >/dev/null || die "cannot tag $t"
done

# start_named_front VAR ARGS...: a regfront; VAR_URL is its URL.
start_named_front() {
    local var=$1
    shift
    start_front "$@" || return 1
    printf -v "${var}_URL" '%s' "$FRONT_URL"
}
start_named_front CORRUPT --fault-corrupt || die "cannot start the corrupting front"
start_named_front LIMITED --fault-429 100000 --retry-after 7 || die "cannot start the 429 front"
# The slow front answers nothing in time, its /token included: it is up once it
# has said its port.
IT_FRONT_READY=0 start_named_front SLOW --delay-ms 4000 || die "cannot start the slow front"
start_named_front GOOD --bearer || die "cannot start regfront"
FRONT_URL=$GOOD_URL

# The config file sets what the flags do not: tag-ttl 120 must show in max-age.
cat >"$IT_DIR/imgmeta.conf" <<EOF
# imgmeta test configuration
tag-ttl = 120
log-level = "info"
mirror = corrupt.test=$CORRUPT_URL
EOF
ADMIN_TOKEN=it-admin-$RANDOM$RANDOM
start_daemon --config "$IT_DIR/imgmeta.conf" --request-timeout-ms 1500 --admin-token "$ADMIN_TOKEN" \
    --mirror "docker.io=$GOOD_URL" --mirror "corrupt.test=$CORRUPT_URL" \
    --mirror "limited.test=$LIMITED_URL" --mirror "slow.test=$SLOW_URL" ||
    die "cannot start imgmeta serve"
U=$DAEMON_URL
MAIN_PID=$DAEMON_PID

# fetch NAME TEMPLATE CURL-ARGS...: one request; headers in $R/NAME.h, body in
# $R/NAME.b, recorded for the OpenAPI validation; prints the status.
fetch() {
    local name=$1 template=$2 method=GET a
    shift 2
    for a in "$@"; do
        case $a in HEAD | -I) method=HEAD ;; POST | DELETE | PUT) method=$a ;; esac
    done
    curl -s --max-time 60 -D "$R/$name.h" -o "$R/$name.b" -w '%{http_code}' "$@"
    printf '%s\t%s\t%s\t%s\n' "$template" "$method" "$R/$name.h" "$R/$name.b" >>"$CASES"
}
# header NAME HEADER: the value of a response header (last response).
header() { tr -d '\r' <"$R/$1.h" | sed -n "s/^$2: //Ip" | tail -n 1; }
body_has() { grep -q -- "$2" "$R/$1.b"; }
jqb() { jq -r "$2" "$R/$1.b" 2>/dev/null; }

IMG=/images/{ref}
TAGS=/repositories/{repository}/tags

# --- images: representation and negotiation ------------------------------------------
s=$(fetch json $IMG "$U/images/python/3.7-slim")
check_eq "GET image: 200" 200 "$s"
check_eq "JSON Content-Type" "application/json" "$(header json Content-Type)"
check_eq "Vary: Accept, Accept-Encoding" "Accept, Accept-Encoding" "$(header json Vary)"
check_eq "JSON names the resolved list digest" "$LIST_DIGEST" "$(jqb json .digest)"
check "Cache-Control max-age within the config file's tag-ttl (120)" \
    awk -v v="$(header json Cache-Control)" 'BEGIN { sub("max-age=", "", v); exit !(v > 0 && v <= 120) }'

md_ok() { # md_ok NAME: a Markdown page answer
    [ "$(header "$1" Content-Type)" = "text/markdown; charset=utf-8" ] && head -n 1 "$R/$1.b" | grep -q '^## `python:3.7-slim`$'
}
json_ok() { [ "$(header "$1" Content-Type)" = "application/json" ] && jq -e .platforms "$R/$1.b" >/dev/null; }
html_ok() { # html_ok NAME: the image's HTML page
    [ "$(header "$1" Content-Type)" = "text/html; charset=utf-8" ] &&
        grep -q '<title>python:3.7-slim - imgmeta</title>' "$R/$1.b"
}

negotiate() { # negotiate NAME EXPECT(md|json|html) ACCEPT...
    local name=$1 want=$2 s
    shift 2
    s=$(fetch "$name" $IMG -H "Accept: $1" "$U/images/python/3.7-slim")
    if [ "$s" = 200 ] && "${want}_ok" "$name"; then
        it_pass "Accept: $1 -> $want"
    else
        it_fail "Accept: $1 -> $want (status $s, $(header "$name" Content-Type))"
    fi
}
negotiate acc_md md "text/markdown"
negotiate acc_q_md md "text/markdown;q=0.9, application/json;q=0.5"
negotiate acc_q_json json "text/markdown;q=0.1, application/json"
negotiate acc_any json "*/*"
negotiate acc_text md "text/*"
negotiate acc_browser html "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
negotiate acc_html html "text/html"
negotiate acc_html_md md "text/html;q=0.5, text/markdown"
negotiate acc_none json "image/png"
negotiate acc_order md "text/markdown, application/json"
negotiate acc_json0 md "application/json;q=0, */*"

s=$(fetch fmt_md $IMG -H "Accept: application/json" "$U/images/python/3.7-slim?format=markdown")
check "?format=markdown wins over Accept" md_ok fmt_md
check "Markdown ETag differs from JSON's" [ "$(header fmt_md ETag)" != "$(header json ETag)" ]

# The HTML page: ?format=html or a browser's Accept; its own ETag, and a policy
# that lets no script run and nothing be fetched.
s=$(fetch fmt_html $IMG -H "Accept: application/json" "$U/images/python/3.7-slim?format=html")
check "?format=html wins over Accept" html_ok fmt_html
check "HTML ETag differs from JSON's and Markdown's" \
    [ "$(header fmt_html ETag)" != "$(header json ETag)" -a "$(header fmt_html ETag)" != "$(header fmt_md ETag)" ]
check_eq "HTML ETag is the browser's page's" "$(header acc_browser ETag)" "$(header fmt_html ETag)"
check_eq "HTML page: Content-Security-Policy" \
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'" \
    "$(header fmt_html Content-Security-Policy)"
check_eq "HTML page: X-Content-Type-Options" nosniff "$(header fmt_html X-Content-Type-Options)"
check_eq "HTML page: Vary: Accept, Accept-Encoding" "Accept, Accept-Encoding" "$(header fmt_html Vary)"
check "HTML page: one bar segment per layer (7 platforms, 5 layers each)" \
    [ "$(grep -o '<rect class="seg"' "$R/fmt_html.b" | wc -l)" = 35 ]
check "no Content-Security-Policy on JSON" [ -z "$(header json Content-Security-Policy)" ]
s=$(fetch html_304 $IMG -H "If-None-Match: $(header fmt_html ETag)" "$U/images/python/3.7-slim?format=html")
check_eq "HTML If-None-Match: 304" 304 "$s"

# The home page and its form.
s=$(fetch home / -H "Accept: text/html" "$U/")
check_eq "GET /: 200 HTML" "200 text/html; charset=utf-8" "$s $(header home Content-Type)"
check "GET /: the form asks /images for ref" body_has home 'action="/images"'
check_eq "GET /: X-Content-Type-Options" nosniff "$(header home X-Content-Type-Options)"
s=$(fetch find /images "$U/images?ref=python%3A3.7-slim")
check_eq "GET /images?ref=python:3.7-slim: 303 to its page" "303 /images/python/3.7-slim" \
    "$s $(header find Location)"
s=$(fetch find_blanks /images "$U/images?ref=+python%3A3.7-slim+")
check_eq "GET /images?ref= drops the blanks around the reference" \
    "303 /images/python/3.7-slim" "$s $(header find_blanks Location)"

# The page's two forms: ?style=current prints the number of entries on the
# platforms line and nothing else differs; each form has its own ETag.
s=$(fetch style_cur $IMG "$U/images/python/3.7-slim?format=markdown&style=current")
check_eq "?style=current: 200, '-<TAB>Platforms: 7'" "200 1" \
    "$s $(grep -c "$(printf '^-\tPlatforms: 7$')" "$R/style_cur.b")"
s=$(fetch style_seed $IMG "$U/images/python/3.7-slim?format=markdown&style=seed")
check "?style=seed is the default page" cmp -s "$R/style_seed.b" "$R/fmt_md.b"
same_but_count() {
    diff <(sed 's/^\(-\tPlatforms:\) 7$/\1/' "$R/style_cur.b") "$R/fmt_md.b" >/dev/null &&
        ! cmp -s "$R/style_cur.b" "$R/fmt_md.b"
}
check "?style=current differs from the seed form in the platforms line only" same_but_count
check "the two forms have their own ETags" \
    [ "$(header style_cur ETag)" != "$(header fmt_md ETag)" -a "$(header style_seed ETag)" = "$(header fmt_md ETag)" ]
s=$(fetch style_inm $IMG -H "If-None-Match: $(header fmt_md ETag)" \
    "$U/images/python/3.7-slim?format=markdown&style=current")
check_eq "the seed form's ETag does not validate the current form" 200 "$s"
s=$(fetch style_json $IMG "$U/images/python/3.7-slim?style=current")
check "a JSON answer is the same whatever the style" cmp -s "$R/style_json.b" "$R/json.b"

s=$(fetch docker_form $IMG "$U/images/python:3.7-slim")
check_eq "one-segment docker form /images/python:3.7-slim" "200 $LIST_DIGEST" "$s $(jqb docker_form .digest)"
s=$(fetch by_digest $IMG "$U/images/python@$LIST_DIGEST")
check_eq "by digest: 200, cached for a year" "200 max-age=31536000" "$s $(header by_digest Cache-Control)"

# HEAD: same status and headers, no body, Content-Length of the GET's body.
s=$(fetch head $IMG -I "$U/images/python/3.7-slim")
# (curl -I writes the headers where the body would go: nothing else may be there.)
check_eq "HEAD image: 200, Content-Length of the GET body, no body" \
    "200 $(stat -c %s "$R/json.b") same" \
    "$s $(header head Content-Length) $(cmp -s "$R/head.b" "$R/head.h" && echo same)"
s=$(fetch head_md $IMG -I -H 'Accept: text/markdown' "$U/images/python/3.7-slim")
check_eq "HEAD Markdown: Content-Type and length" \
    "text/markdown; charset=utf-8 $(stat -c %s "$R/acc_md.b")" \
    "$(header head_md Content-Type) $(header head_md Content-Length)"

# --- compressed answers ------------------------------------------------------------------
# raw NAME CURL-ARGS...: like fetch, but not recorded for the contract (a gzip
# body is not JSON until inflated; the recorded ones use curl --compressed).
raw() {
    local name=$1
    shift
    curl -s --max-time 60 -D "$R/$name.h" -o "$R/$name.b" -w '%{http_code}' "$@"
}
inflates_to() { gzip -dc <"$R/$1.b" >"$R/$1.plain" 2>/dev/null && cmp -s "$R/$1.plain" "$R/$2.b"; }
GZ='Accept-Encoding: gzip'
s=$(raw gz_json -H "$GZ" "$U/images/python/3.7-slim")
check_eq "gzip: 200, Content-Encoding: gzip, Vary: Accept, Accept-Encoding" \
    "200 gzip Accept, Accept-Encoding" "$s $(header gz_json Content-Encoding) $(header gz_json Vary)"
check "gzip JSON inflates to the plain JSON answer byte for byte" inflates_to gz_json json
check "gzip: fewer bytes than the plain answer" [ "$(stat -c %s "$R/gz_json.b")" -lt "$(stat -c %s "$R/json.b")" ]
check_eq "gzip: Content-Length is the compressed length" "$(stat -c %s "$R/gz_json.b")" \
    "$(header gz_json Content-Length)"
gz_etag=$(header gz_json ETag)
check "gzip: an ETag of its own, the plain one with -gzip" \
    [ "$gz_etag" = "$(header json ETag | sed 's/"$/-gzip"/')" ]
s=$(raw gz_json2 -H "$GZ" "$U/images/python/3.7-slim")
check "gzip asked again (kept, not compressed again): the same bytes" cmp -s "$R/gz_json2.b" "$R/gz_json.b"
s=$(raw gz_md -H "$GZ" -H 'Accept: text/markdown' "$U/images/python/3.7-slim")
check_eq "gzip Markdown: 200 gzip" "200 gzip" "$s $(header gz_md Content-Encoding)"
check "gzip Markdown inflates to the plain page byte for byte" inflates_to gz_md acc_md
s=$(raw gz_head -I -H "$GZ" "$U/images/python/3.7-slim")
check_eq "HEAD with gzip: Content-Length of the compressed answer, Content-Encoding, ETag" \
    "200 $(stat -c %s "$R/gz_json.b") gzip $gz_etag" \
    "$s $(header gz_head Content-Length) $(header gz_head Content-Encoding) $(header gz_head ETag)"
s=$(fetch gz_inm $IMG -H "$GZ" -H "If-None-Match: $gz_etag" "$U/images/python/3.7-slim")
check_eq "If-None-Match with the gzip ETag: 304, that ETag, no body" "304 $gz_etag 0" \
    "$s $(header gz_inm ETag) $(cat "$R/gz_inm.b" 2>/dev/null | wc -c)"
s=$(raw gz_inm_plain -H "If-None-Match: $gz_etag" "$U/images/python/3.7-slim")
check_eq "304 and 404 answers say Vary: Accept, Accept-Encoding too" \
    "Accept, Accept-Encoding|Accept, Accept-Encoding" \
    "$(header gz_inm Vary)|$(curl -s -D - -o /dev/null -H "$GZ" "$U/images/python/3.7-nope" | tr -d '\r' | sed -n 's/^Vary: //Ip')"
check_eq "the gzip ETag does not validate a request without gzip" "200 " \
    "$s $(header gz_inm_plain Content-Encoding)"
# q-values: gzip;q=0, identity and codings it does not make get the plain bytes
for ae in 'gzip;q=0' identity 'br, deflate' '*;q=0' 'gzip;q=0, *'; do
    s=$(raw gz_no -H "Accept-Encoding: $ae" "$U/images/python/3.7-slim")
    check_eq "Accept-Encoding: $ae -> plain, the plain ETag" "200  $(header json ETag)" \
        "$s $(header gz_no Content-Encoding) $(header gz_no ETag)"
    check "Accept-Encoding: $ae -> the plain bytes" cmp -s "$R/gz_no.b" "$R/json.b"
done
for ae in '*' 'deflate;q=1, gzip;q=0.5' 'x-gzip' 'GZIP'; do
    s=$(raw gz_yes -H "Accept-Encoding: $ae" "$U/images/python/3.7-slim")
    check_eq "Accept-Encoding: $ae -> gzip, the same bytes" "200 gzip same" \
        "$s $(header gz_yes Content-Encoding) $(cmp -s "$R/gz_yes.b" "$R/gz_json.b" && echo same)"
done
s=$(raw gz_small -H "$GZ" "$U/images/python/3.7-slim?view=summary&platform=linux/arm/v7")
check_eq "an answer of 1 KiB or less is sent plain, with Vary" "200  Accept, Accept-Encoding" \
    "$s $(header gz_small Content-Encoding) $(header gz_small Vary)"
check "... and is under 1 KiB" [ "$(stat -c %s "$R/gz_small.b")" -le 1024 ]
for v in json md; do # the contract, curl inflating the body
    a=application/json
    [ $v = md ] && a=text/markdown
    s=$(fetch "gz_c_$v" $IMG --compressed -H "Accept: $a" "$U/images/python/3.7-slim")
    check_eq "curl --compressed ($v): gzip, the plain bytes" "200 gzip same" \
        "$s $(header "gz_c_$v" Content-Encoding) $(cmp -s "$R/gz_c_$v.b" "$R/$([ $v = md ] && echo acc_md || echo json).b" && echo same)"
done
fetch gz_c_head $IMG -I --compressed "$U/images/python/3.7-slim" >/dev/null

# A worker queues a warm answer again as the response it built for it while
# every byte it would send is the same (server/http.c, "answers queued
# again"): interleaved on one keep-alive connection, each variant must still
# get its own bytes and headers, and max-age must still count down.
kept_variants() {
    local i args=() u=$U/images/python/3.7-slim w='%{http_code}:%{num_connects} '
    for i in 1 2 3; do # --next: options start over, the connection stays
        args+=(-w "$w" -o "$R/kv_j$i.b" -D "$R/kv_j$i.h" "$u" --next
            -w "$w" -H "$GZ" -o "$R/kv_g$i.b" -D "$R/kv_g$i.h" "$u" --next
            -w "$w" -H 'Accept: text/markdown' -o "$R/kv_m$i.b" -D "$R/kv_m$i.h" "$u" --next
            -w "$w" -I -H "$GZ" -o "$R/kv_hd$i.b" -D "$R/kv_hd$i.h" "$u" --next
            -w "$w" -H "If-None-Match: $gz_etag" -H "$GZ" -o "$R/kv_n$i.b" -D "$R/kv_n$i.h" "$u" --next)
    done
    curl -s --max-time 60 "${args[@]}" -w "$w" -o /dev/null "$U/healthz"
}
kv=$(kept_variants)
check_eq "15 interleaved answers on one connection: statuses, one connect" \
    "200:1 200:0 200:0 200:0 304:0 200:0 200:0 200:0 200:0 304:0 200:0 200:0 200:0 200:0 304:0 200:0 " "$kv"
kv_ok=yes
for i in 1 2 3; do
    cmp -s "$R/kv_j$i.b" "$R/json.b" && cmp -s "$R/kv_g$i.b" "$R/gz_json.b" &&
        cmp -s "$R/kv_m$i.b" "$R/acc_md.b" && [ ! -s "$R/kv_n$i.b" ] || kv_ok="no ($i: bytes)"
    [ "$(header "kv_j$i" ETag) $(header "kv_j$i" Content-Encoding)" = "$(header json ETag) " ] &&
        [ "$(header "kv_g$i" ETag) $(header "kv_g$i" Content-Encoding)" = "$gz_etag gzip" ] &&
        [ "$(header "kv_m$i" Content-Type)" = "$(header acc_md Content-Type)" ] &&
        [ "$(header "kv_hd$i" Content-Length)" = "$(stat -c %s "$R/gz_json.b")" ] &&
        [ "$(header "kv_n$i" ETag)" = "$gz_etag" ] || kv_ok="no ($i: headers)"
done
check_eq "... each answer its own bytes, ETag, type and encoding, every time" yes "$kv_ok"
ma0=$(curl -s -D - -o /dev/null "$U/images/python/3.7-slim" | tr -d '\r' | sed -n 's/^Cache-Control: max-age=//Ip')
sleep 2.1
ma1=$(curl -s -D - -o /dev/null "$U/images/python/3.7-slim" | tr -d '\r' | sed -n 's/^Cache-Control: max-age=//Ip')
check "the same warm answer 2 s later: max-age counted down ($ma0, then $ma1)" \
    [ "${ma1:-999999}" -lt "${ma0:-0}" ]

# The answers-file tier: a daemon without the in-memory LRU sends both
# encodings from the answers file; the compressed bytes are the same.
gzip_file_tier() {
    local pid port fu hits0 hits1
    "$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/gz/cache.db" --answer-cache-bytes 0 \
        --mirror "docker.io=$FRONT_URL" >"$IT_DIR/gz.log" 2>&1 &
    pid=$!
    it_record "$pid"
    port=$(listen_port "$IT_DIR/gz.log" "$pid") || return 1
    fu=http://127.0.0.1:$port
    wait_http "$fu/healthz" 200 "$pid" || return 1
    raw gzf_plain "$fu/images/python/3.7-slim" >/dev/null
    raw gzf_md0 -H 'Accept: text/markdown' -H "$GZ" "$fu/images/python/3.7-slim" >/dev/null
    hits0=$(curl -s "$fu/metrics" | sed -n 's/^imgmeta_answer_file_hits_total //p')
    raw gzf_json -H "$GZ" "$fu/images/python/3.7-slim" >/dev/null
    raw gzf_json2 -H "$GZ" "$fu/images/python/3.7-slim" >/dev/null
    raw gzf_md -H 'Accept: text/markdown' -H "$GZ" "$fu/images/python/3.7-slim" >/dev/null
    hits1=$(curl -s "$fu/metrics" | sed -n 's/^imgmeta_answer_file_hits_total //p')
    check_eq "answers file: JSON, gzip JSON twice and gzip Markdown all from the file" 3 \
        "$((${hits1:-0} - ${hits0:-0}))"
    check "answers file: gzip JSON inflates to the plain answer" inflates_to gzf_json gzf_plain
    check "answers file: the same gzip bytes each time, and as the LRU's" \
        eval "cmp -s '$R/gzf_json.b' '$R/gzf_json2.b' && cmp -s '$R/gzf_json.b' '$R/gz_json.b'"
    check "answers file: gzip Markdown inflates to the plain page" inflates_to gzf_md acc_md
    check_eq "answers file: Content-Encoding gzip" "gzip gzip" \
        "$(header gzf_json2 Content-Encoding) $(header gzf_md Content-Encoding)"
    kill -TERM "$pid"
    wait "$pid"
}
mkdir -p "$IT_DIR/gz"
gzip_file_tier || it_fail "the answers-file gzip test could not run"

# --- summary view and platform filter -------------------------------------------------
s=$(fetch summary $IMG "$U/images/python/3.7-slim?view=summary")
check_eq "summary: 7 platforms with platform, platformString, digest, totalSize only" \
    '200 7 ["digest","platform","platformString","totalSize"]' \
    "$s $(jqb summary '.platforms | length') $(jq -c '[.platforms[] | keys] | unique | .[0]' "$R/summary.b")"

s=$(fetch plat1 $IMG "$U/images/python/3.7-slim?platform=linux/arm/v7")
check_eq "platform=linux/arm/v7: one entry" '200 ["linux; arm variant v7"]' \
    "$s $(jq -c '[.platforms[].platformString]' "$R/plat1.b")"
s=$(fetch plat2 $IMG "$U/images/python/3.7-slim?platform=linux/amd64&platform=linux/s390x&view=summary")
check_eq "platform repeated: both entries, list order" '200 ["linux; amd64","linux; s390x"]' \
    "$s $(jq -c '[.platforms[].platformString]' "$R/plat2.b")"
s=$(fetch plat_md $IMG "$U/images/python/3.7-slim?format=markdown&platform=linux/arm/v7")
plat_md_ok() {
    [ "$s" = 200 ] && grep -q '^### `python:3.7-slim` - linux; arm variant v7$' "$R/plat_md.b" &&
        ! grep -q '^### `python:3.7-slim` - linux; amd64$' "$R/plat_md.b"
}
check "platform filter applies to Markdown" plat_md_ok
check "filtered answers have their own ETags" [ "$(header plat1 ETag)" != "$(header json ETag)" ]
s=$(fetch plat_none $IMG "$U/images/python/3.7-slim?platform=windows/amd64")
check_eq "no platform matches: 404 platform_not_found" "404 platform_not_found" "$s $(jqb plat_none .error.code)"
check "404 lists the image's platforms" body_has plat_none 'linux/amd64, linux/arm/v5, linux/arm/v7'
s=$(fetch plat_none_md $IMG "$U/images/python/3.7-slim?platform=windows/amd64&format=markdown")
check_eq "no platform match in Markdown: 404 as plain text" "404 text/plain; charset=utf-8" \
    "$s $(header plat_none_md Content-Type)"

# --- conditional requests ---------------------------------------------------------------
etag=$(header json ETag)
s=$(fetch inm $IMG -H "If-None-Match: $etag" "$U/images/python/3.7-slim")
check_eq "If-None-Match with the ETag: 304, no body, same ETag" "304 0 $etag" \
    "$s $(cat "$R/inm.b" 2>/dev/null | wc -c) $(header inm ETag)"
s=$(fetch inm_other $IMG -H 'If-None-Match: "other"' "$U/images/python/3.7-slim")
check_eq "If-None-Match with another tag: 200" 200 "$s"

# --- errors -------------------------------------------------------------------------------
error_is() { # error_is NAME STATUS CODE: JSON error body with that code
    local name=$1 want=$2 code=$3 got
    got="$(cat "$R/$name.status") $(header "$name" Content-Type) $(jqb "$name" .error.code)"
    check_eq "$name: $want $code" "$want application/json $code" "$got"
}
efetch() { local name=$1; shift; fetch "$name" "$@" >"$R/$name.status"; }

efetch missing_html $IMG "$U/images/python/3.7-nope?format=html"
check_eq "missing tag in HTML: 404, the page says so" "404 text/html; charset=utf-8" \
    "$(cat "$R/missing_html.status") $(header missing_html Content-Type)"
check "missing tag in HTML: does not exist (yet?)" body_has missing_html '<strong>does not exist</strong> (yet?)'
efetch find_bad /images "$U/images?ref=Python%3A3"
error_is find_bad 400 invalid_reference
efetch find_none /images "$U/images"
error_is find_none 400 invalid_parameter
efetch bad_ref $IMG "$U/images/Python/3.7-slim"
error_is bad_ref 400 invalid_reference
efetch no_tag $IMG "$U/images/python"
error_is no_tag 400 invalid_reference
efetch bad_format $IMG "$U/images/python/3.7-slim?format=xml"
error_is bad_format 400 invalid_parameter
efetch bad_view $IMG "$U/images/python/3.7-slim?view=tiny"
error_is bad_view 400 invalid_parameter
efetch bad_style $IMG "$U/images/python/3.7-slim?format=markdown&style=2018"
check_eq "bad_style: 400, plain text naming both forms" "400 text/plain; charset=utf-8 seed current" \
    "$(cat "$R/bad_style.status") $(header bad_style Content-Type) $(grep -o "'seed'" "$R/bad_style.b" | tr -d "'") $(grep -o "'current'" "$R/bad_style.b" | tr -d "'")"
efetch bad_style_json $IMG "$U/images/python/3.7-slim?style=Current"
error_is bad_style_json 400 invalid_parameter
efetch bad_ref_md $IMG -H 'Accept: text/markdown' "$U/images/Python/3.7-slim"
check_eq "a Markdown request's 400 is plain text" "400 text/plain; charset=utf-8" \
    "$(cat "$R/bad_ref_md.status") $(header bad_ref_md Content-Type)"

# A path, query or header field that decodes to a control character (or has a
# bad escape, invalid UTF-8, an encoded slash in the path) is refused before routing.
efetch enc_nul $IMG "$U/images/python/3.7-slim%00"
error_is enc_nul 400 invalid_request
check "the encoded NUL's message names the path and the control character" \
    body_has enc_nul 'the path decodes to a control character'
efetch enc_slash $IMG "$U/images/python%2F3.7-slim"
error_is enc_slash 400 invalid_request
efetch enc_query $TAGS "$U/repositories/python/tags?last=%C0%AE"
error_is enc_query 400 invalid_request
efetch enc_md $IMG -H 'Accept: text/markdown' "$U/images/python/3.7-slim?x=%0d%0a"
check_eq "a Markdown request's invalid_request is plain text" \
    "400 text/plain; charset=utf-8" "$(cat "$R/enc_md.status") $(header enc_md Content-Type)"

efetch missing $IMG "$U/images/python/3.7-nope"
error_is missing 404 not_found
efetch missing_md $IMG "$U/images/python/3.7-nope?format=markdown"
check_eq "missing tag in Markdown: 404 with the repo-info page" \
    '404 ## `python:3.7-nope`|**does not exist** (yet?)' \
    "$(cat "$R/missing_md.status") $(grep -v '^$' "$R/missing_md.b" | paste -sd '|')"
efetch no_route "#/x-unrouted-responses/NoSuchRoute" "$U/nothing/here"
error_is no_route 404 no_such_route

efetch post "#/components/responses/MethodNotAllowed" -X POST "$U/images/python/3.7-slim"
error_is post 405 method_not_allowed
check_eq "405 has Allow: GET, HEAD" "GET, HEAD" "$(header post Allow)"
efetch delete "#/components/responses/MethodNotAllowed" -X DELETE "$U/healthz"
error_is delete 405 method_not_allowed

efetch body "#/components/responses/ContentTooLarge" -X POST --data-binary 'x=1' "$U/images/python/3.7-slim"
error_is body 413 body_not_allowed
long=$(head -c 3000 /dev/zero | tr '\0' a)
efetch long_path $IMG "$U/images/python/$long"
error_is long_path 414 uri_too_long
efetch long_query $IMG "$U/images/python/3.7-slim?x=$(head -c 9000 /dev/zero | tr '\0' a)"
error_is long_query 414 uri_too_long
efetch big_headers $IMG -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$U/images/python/3.7-slim"
error_is big_headers 431 headers_too_large
# Beyond the connection's memory (64 KiB) libmicrohttpd answers itself (HTML).
s=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Big: $(head -c 70000 /dev/zero | tr '\0' a)" "$U/healthz")
check_eq "headers beyond 64 KiB: libmicrohttpd's own 431" 431 "$s"

efetch corrupt $IMG "$U/images/corrupt.test/library/python/3.7-slim"
check_eq "altered manifest upstream: 502 digest_mismatch" "502 digest_mismatch" \
    "$(cat "$R/corrupt.status") $(jqb corrupt .error.code)"
efetch limited $IMG "$U/images/limited.test/library/python/3.7-slim"
error_is limited 503 upstream_rate_limited
check_eq "503 carries the registry's own Retry-After (7), not a made-up one" 7 \
    "$(header limited Retry-After)"
efetch slow $IMG "$U/images/slow.test/library/python/3.7-slim"
error_is slow 504 upstream_timeout
efetch slow_md $IMG -H 'Accept: text/markdown' "$U/images/slow.test/library/python/3.7-slim"
check_eq "a Markdown request's 504 is plain text" "504 text/plain; charset=utf-8" \
    "$(cat "$R/slow_md.status") $(header slow_md Content-Type)"

# --- tags -------------------------------------------------------------------------------------
s=$(fetch tags_all $TAGS "$U/repositories/python/tags")
all=$(jq -c .tags "$R/tags_all.b")
check_eq "tags: every tag the registry has" '200 ["3","3.7","3.7-slim","latest"]' "$s $(jq -c sort <<<"$all")"
check_eq "tags: no Link on the whole list" "" "$(header tags_all Link)"
s=$(fetch tags_p1 $TAGS "$U/repositories/library/python/tags?n=2")
check_eq "tags n=2: the first two, in the registry's order" "200 $(jq -c '.[0:2]' <<<"$all")" "$s $(jq -c .tags "$R/tags_p1.b")"
link=$(header tags_p1 Link)
check_eq "tags n=2: Link to the next page" \
    "</repositories/library/python/tags?n=2&last=$(jq -r '.[1]' <<<"$all")>; rel=\"next\"" "$link"
next=$(sed -n 's/^<\(.*\)>; rel="next"$/\1/p' <<<"$link")
s=$(fetch tags_p2 $TAGS "$U$next")
check_eq "tags: following Link gives the last page, without Link" "200 $(jq -c '.[2:4]' <<<"$all") " \
    "$s $(jq -c .tags "$R/tags_p2.b") $(header tags_p2 Link)"
efetch tags_missing $TAGS "$U/repositories/nosuch/tags"
error_is tags_missing 404 not_found
efetch tags_bad_n $TAGS "$U/repositories/python/tags?n=0"
error_is tags_bad_n 400 invalid_parameter
s=$(fetch tags_head $TAGS -I "$U/repositories/python/tags")
check_eq "HEAD tags: 200 and the GET's length" "200 $(stat -c %s "$R/tags_all.b")" "$s $(header tags_head Content-Length)"

# --- operations ------------------------------------------------------------------------------
s=$(fetch healthz /healthz "$U/healthz")
check_eq "healthz" '200 ok' "$s $(jqb healthz .status)"
s=$(fetch readyz /readyz "$U/readyz")
check_eq "readyz" '200 ready' "$s $(jqb readyz .status)"
s=$(fetch healthz_head /healthz -I "$U/healthz")
check_eq "HEAD healthz" 200 "$s"

s=$(fetch metrics /metrics "$U/metrics")
check_eq "metrics: 200, Prometheus text 0.0.4" "200 text/plain; version=0.0.4; charset=utf-8" \
    "$s $(header metrics Content-Type)"
check "metrics pass promtool check metrics" promtool check metrics <"$R/metrics.b"
metric() { awk -v k="$1" '$1 == k { print $2 }' "$R/metrics.b"; }
positive() { awk -v v="$(metric "$1")" 'BEGIN { exit !(v > 0) }'; }
check "metrics count image requests by route and status" \
    positive 'imgmeta_http_request_duration_seconds_count{route="images",status="200"}'
check "metrics count 404s and 414s" eval \
    "positive 'imgmeta_http_request_duration_seconds_count{route=\"images\",status=\"404\"}' &&
     positive 'imgmeta_http_request_duration_seconds_count{route=\"images\",status=\"414\"}'"
check "metrics count tag list requests" positive 'imgmeta_http_request_duration_seconds_count{route="tags",status="200"}'
check "metrics: cache hits and misses" eval \
    "positive 'imgmeta_cache_lookups_total{outcome=\"hit\"}' && positive 'imgmeta_cache_lookups_total{outcome=\"miss\"}'"
check "metrics: stale and revalidated outcomes are exported" eval \
    "[ -n \"$(metric 'imgmeta_cache_lookups_total{outcome="stale"}')\" ] &&
     [ -n \"$(metric 'imgmeta_cache_lookups_total{outcome="revalidated"}')\" ]"
check "metrics: upstream requests by registry" grep -q '^imgmeta_upstream_request_duration_seconds_count{registry="docker.io",status="200"}' "$R/metrics.b"
check "metrics: database size and entries" eval "positive imgmeta_db_bytes && positive imgmeta_db_documents"
check "metrics: in-flight resolutions gauge" grep -q '^imgmeta_resolutions_in_flight ' "$R/metrics.b"
check "metrics: rate-limit gauge family" grep -q '^# TYPE imgmeta_upstream_ratelimit_remaining gauge' "$R/metrics.b"
s=$(fetch metrics_head /metrics -I "$U/metrics")
check_eq "HEAD metrics" 200 "$s"

# --- access log --------------------------------------------------------------------------------
access_line_ok() {
    grep 'event=access' "$IT_DIR/daemon.log" | grep 'path="/images/python/3.7-slim"' | grep 'status=200' | head -n 1 |
        grep -Eq '^ts=[0-9T:.-]+Z level=info req=[0-9a-f]+ event=access method=GET path="[^"]+" status=200 bytes=[0-9]+ dur_ms=[0-9]+ cache=(hit|miss|coalesced)'
}
check "access log: time, request id, method, path, status, bytes, duration, cache" access_line_ok
check "access log: one line per request" \
    [ "$(grep -c 'event=access' "$IT_DIR/daemon.log")" -ge "$(wc -l <"$CASES")" ]

# --- config -----------------------------------------------------------------------------------------
check "serve --help lists --config and its environment variable" eval \
    "'$IMGMETA' serve --help | grep -q -- '--config *IMGMETA_CONFIG'"
# (README.md's option table is checked against --help by ctest docs.options)
bad_conf() {
    printf 'no-such-option = 1\n' >"$IT_DIR/bad.conf"
    ! "$IMGMETA" serve --config "$IT_DIR/bad.conf" 2>"$IT_DIR/bad.err" &&
        grep -q 'bad.conf:1: unknown option' "$IT_DIR/bad.err"
}
check "a bad config file line is refused with file and line" bad_conf
# booleans: 1/true/yes/on and 0/false/no/off, any case; anything else refused
"$IMGMETA" serve --prewarm maybe --db "$IT_DIR/never.db" >/dev/null 2>"$IT_DIR/bool.err"
check_eq "--prewarm maybe is refused at start, naming the accepted words" "2 1" \
    "$? $(grep -c "prewarm: 'maybe' is not a boolean (1, true, yes, on; 0, false, no, off)" "$IT_DIR/bool.err")"
"$IMGMETA" describe python:3.7-nope --db "$IT_DIR/bool.db" --prewarm Off --db-recover TRUE \
    --mirror "docker.io=$GOOD_URL" >/dev/null 2>"$IT_DIR/bool2.err"
check_eq "--prewarm Off and --db-recover TRUE are booleans (describe runs: exit 1, not found)" 1 "$?"

# Precedence defaults < file < environment < flags, seen in max-age (the tag is
# fresh in the shared cache file, so max-age is the tag-ttl minus a few seconds).
maxage_with() { # maxage_with ENV-ASSIGNMENT|- ARGS...: max-age a daemon so configured gives
    local envset=$1 port pid ma log
    shift
    IT_STARTS=$((IT_STARTS + 1))
    log=$IT_DIR/precedence-$IT_STARTS.log
    env ${envset/#-/IMGMETA_UNUSED=1} "$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/cache.db" \
        --mirror "docker.io=$GOOD_URL" "$@" >"$log" 2>&1 &
    pid=$!
    it_record "$pid"
    port=$(listen_port "$log" "$pid") || return 1
    wait_http "http://127.0.0.1:$port/healthz" 200 "$pid" >/dev/null 2>&1 || return 1
    ma=$(curl -sI "http://127.0.0.1:$port/images/python/3.7-slim" | tr -d '\r' | sed -n 's/^Cache-Control: max-age=//Ip')
    kill -TERM "$pid"
    wait "$pid"
    printf '%s\n' "$ma"
}
in_range() { [ -n "$1" ] && [ "$1" -gt "$2" ] && [ "$1" -le "$3" ]; }
ma=$(maxage_with - --config "$IT_DIR/imgmeta.conf")
check "config file: tag-ttl 120 (max-age $ma)" in_range "$ma" 60 120
ma=$(maxage_with IMGMETA_TAG_TTL=60 --config "$IT_DIR/imgmeta.conf")
check "environment beats the file: IMGMETA_TAG_TTL=60 (max-age $ma)" in_range "$ma" 30 60
ma=$(maxage_with IMGMETA_TAG_TTL=60 --config "$IT_DIR/imgmeta.conf" --tag-ttl 30)
check "a flag beats both: --tag-ttl 30 (max-age $ma)" in_range "$ma" 0 30
ma=$(maxage_with IMGMETA_CONFIG="$IT_DIR/imgmeta.conf")
check "IMGMETA_CONFIG names the file too (max-age $ma)" in_range "$ma" 60 120

# --- imgmeta describe ---------------------------------------------------------------------------
D=("--db" "$IT_DIR/cache.db" "--mirror" "docker.io=$GOOD_URL" "--mirror" "corrupt.test=$CORRUPT_URL")
"$IMGMETA" describe python:3.7-slim "${D[@]}" >"$IT_DIR/cli.json" 2>"$IT_DIR/cli.err"
check_eq "describe: exit 0, the same JSON as the service" "0" "$?"
check "describe JSON equals GET /images/python:3.7-slim" cmp -s "$IT_DIR/cli.json" "$R/docker_form.b"
"$IMGMETA" describe python:3.7-slim --format markdown --platform linux/arm/v7 "${D[@]}" >"$IT_DIR/cli.md" 2>&1
check_eq "describe --format markdown --platform: exit 0, the served page" "0" "$?"
check "describe Markdown equals the filtered page" cmp -s "$IT_DIR/cli.md" "$R/plat_md.b"
"$IMGMETA" describe python:3.7-slim --style current "${D[@]}" >"$IT_DIR/cli-cur.md" 2>&1
check_eq "describe --style current: exit 0" "0" "$?"
check "describe --style current prints the served current page" cmp -s "$IT_DIR/cli-cur.md" "$R/style_cur.b"
"$IMGMETA" describe python:3.7-slim --style=seed --format markdown "${D[@]}" >"$IT_DIR/cli-seed.md" 2>&1
check "describe --style=seed prints the served seed page" cmp -s "$IT_DIR/cli-seed.md" "$R/fmt_md.b"
IMGMETA_MARKDOWN_STYLE=current "$IMGMETA" describe python:3.7-slim --format markdown "${D[@]}" \
    >"$IT_DIR/cli-env.md" 2>&1
check "IMGMETA_MARKDOWN_STYLE=current makes it the default" cmp -s "$IT_DIR/cli-env.md" "$R/style_cur.b"
printf 'markdown-style = current\n' >"$IT_DIR/style.conf"
"$IMGMETA" describe python:3.7-slim --config "$IT_DIR/style.conf" --format markdown "${D[@]}" \
    >"$IT_DIR/cli-conf.md" 2>&1
check "markdown-style = current in the config file makes it the default" \
    cmp -s "$IT_DIR/cli-conf.md" "$R/style_cur.b"
"$IMGMETA" describe python:3.7-slim --config "$IT_DIR/style.conf" --style seed "${D[@]}" \
    >"$IT_DIR/cli-conf-seed.md" 2>&1
check "--style seed overrides that default" cmp -s "$IT_DIR/cli-conf-seed.md" "$R/fmt_md.b"
"$IMGMETA" describe python:3.7-slim --style 2018 "${D[@]}" >/dev/null 2>"$IT_DIR/cli-style.err"
check_eq "describe --style 2018: exit 2, naming both" "2 1" "$? $(grep -c "'seed'.*'current'" "$IT_DIR/cli-style.err")"
"$IMGMETA" serve --markdown-style 2018 --db "$IT_DIR/never.db" >/dev/null 2>"$IT_DIR/serve-style.err"
check_eq "serve --markdown-style 2018 is refused at start (usage: exit 2)" "2 1" \
    "$? $(grep -c 'markdown-style.*seed or current' "$IT_DIR/serve-style.err")"
"$IMGMETA" describe python:3.7-nope "${D[@]}" >/dev/null 2>&1
check_eq "describe a missing tag: exit 1" 1 "$?"
"$IMGMETA" describe Python:3.7 "${D[@]}" >/dev/null 2>&1
check_eq "describe an invalid reference: exit 2" 2 "$?"
"$IMGMETA" describe "${D[@]}" >/dev/null 2>&1
check_eq "describe without REF: exit 2" 2 "$?"
"$IMGMETA" describe corrupt.test/library/python:3.7-slim "${D[@]}" >/dev/null 2>&1
check_eq "describe with a corrupting upstream: exit 3" 3 "$?"

# --- --max-resolutions: the bound on upstream work answers 503 busy -------------------------------
# A second daemon allows one upstream operation at a time; a resolution
# through the slow front holds it (the front answers after its timeout), so
# another reference, and a tag list, are refused at once with 503 busy and
# Retry-After, while the running one goes on.
busy() {
    local port pid bu i cpid
    "$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/busy.db" --max-resolutions 1 \
        --request-timeout-ms 1500 --max-retries 0 --mirror "slow.test=$SLOW_URL" \
        --prewarm 0 >"$IT_DIR/busy.log" 2>&1 & # docker.io is not mirrored: no probe out
    pid=$!
    it_record "$pid"
    port=$(listen_port "$IT_DIR/busy.log" "$pid") || return 1
    bu=http://127.0.0.1:$port
    wait_http "$bu/healthz" 200 "$pid" || return 1
    curl -s -o /dev/null --max-time 30 "$bu/images/slow.test/library/python/3.7-slim" &
    cpid=$!
    for i in $(seq 1 50); do
        curl -s "$bu/metrics" | grep -q '^imgmeta_resolutions_in_flight 1$' && break
        sleep 0.05
    done
    efetch busy_image $IMG "$bu/images/slow.test/library/python/3"
    error_is busy_image 503 busy
    check_eq "busy: Retry-After 1" 1 "$(header busy_image Retry-After)"
    efetch busy_tags $TAGS "$bu/repositories/slow.test/library/python/tags"
    error_is busy_tags 503 busy
    check_eq "busy: counted in /metrics" "imgmeta_resolutions_refused_total 2" \
        "$(curl -s "$bu/metrics" | grep '^imgmeta_resolutions_refused_total')"
    wait "$cpid"
    kill -TERM "$pid"
    wait "$pid"
}
busy || it_fail "the --max-resolutions test could not run"

# --- a tag's history and the diff of two images (integration.history checks their numbers) ----------
s=$(fetch hist $IMG "$U/images/python/3.7-slim?view=history")
check_eq "view=history: 200 JSON, the first sighting's previous digest null" \
    "200 application/json $LIST_DIGEST null" \
    "$s $(header hist Content-Type) $(jqb hist '.changes[-1].digest') $(jqb hist '.changes[-1].previousDigest')"
s=$(fetch hist_md $IMG -H 'Accept: text/markdown' "$U/images/python/3.7-slim?view=history&n=1")
check_eq "view=history as Markdown: a table" "200 text/markdown; charset=utf-8 1" \
    "$s $(header hist_md Content-Type) $(grep -c '^| seen | digest |' "$R/hist_md.b")"
s=$(fetch hist_none $IMG "$U/images/python/3.7-nope?view=history")
check_eq "view=history of a tag that does not exist: 404" 404 "$s"
s=$(fetch diff /diff "$U/diff?from=python:3.7-slim&to=python:3&platform=linux/amd64")
check_eq "diff of two tags of one list: 200, one platform, nothing added" "200 linux/amd64 0 0" \
    "$s $(jqb diff '.platforms[0].platform') $(jqb diff '.platforms[0].added | length') $(jqb diff '.platforms[0].sizeDelta')"
s=$(fetch diff_md /diff -H 'Accept: text/markdown' "$U/diff?from=python:3.7-slim&to=python:3")
check_eq "diff as Markdown" "200 text/markdown; charset=utf-8" "$s $(header diff_md Content-Type)"
efetch diff_none /diff "$U/diff?from=python:3.7-slim&to=python:3.7-nope"
error_is diff_none 404 not_found
check "diff: the 404 names the side" body_has diff_none '"to: '
efetch diff_noplat /diff "$U/diff?from=python:3.7-slim&to=python:3&platform=windows/amd64"
error_is diff_noplat 404 platform_not_found

# A tag that moved: its history pages with a Link (validated below). The daemon's
# tag is fresh for 120 s, so the move is seen through name:tag@digest, which
# resolves the tag again when the cached digest is not the one named.
saved=$LIST_DIGEST
IT_OUT=$IT_DIR/fx-moving fill_fixture push --repo library/moving --tag t || die "cannot push moving:t"
M1=$LIST_DIGEST
curl -s -o /dev/null "$U/images/moving/t"
IT_OUT=$IT_DIR/fx-moving2 fill_fixture push-variant --variant 5 --repo library/moving --tag t ||
    die "cannot move moving:t"
M2=$LIST_DIGEST
LIST_DIGEST=$saved
curl -s -o /dev/null "$U/images/moving:t@$M2"
s=$(fetch hist_p1 $IMG "$U/images/moving/t?view=history&n=1")
link=$(header hist_p1 Link | sed -n 's/^<\(.*\)>; rel="next"$/\1/p')
check_eq "a moved tag's history, n=1: its newest change and a Link" "200 $M2 $M1 yes" \
    "$s $(jqb hist_p1 '.changes[0].digest') $(jqb hist_p1 '.changes[0].previousDigest') $([ -n "$link" ] && echo yes)"
s=$(fetch hist_p2 $IMG "$U$link")
check_eq "... the Link's page: the first sighting" "200 $M1 null" \
    "$s $(jqb hist_p2 '.changes[0].digest') $(jqb hist_p2 '.changes[0].previousDigest')"

# Hostile parameters: each a 400 with a code.
long=$(printf 'a%.0s' $(seq 1 3000))
hostile() { # hostile NAME TEMPLATE CODE QUERY-URL
    efetch "$1" "$2" "$U$4"
    error_is "$1" 400 "$3"
}
hostile diff_nothing /diff invalid_parameter "/diff"
hostile diff_no_to /diff invalid_parameter "/diff?from=python:3.7-slim"
hostile diff_empty_from /diff invalid_parameter "/diff?from=&to=python:3"
hostile diff_bad_ref /diff invalid_reference "/diff?from=Python:3&to=python:3"
hostile diff_huge_ref /diff invalid_reference "/diff?from=python:3&to=$long"
hostile diff_twice /diff invalid_parameter "/diff?from=python:3&from=python:3.7&to=python:3"
hostile diff_plat /diff invalid_parameter "/diff?from=python:3&to=python:3&platform=linux"
hostile diff_plat_long /diff invalid_parameter "/diff?from=python:3&to=python:3&platform=linux/${long:0:100}"
hostile diff_plat_slashes /diff invalid_parameter "/diff?from=python:3&to=python:3&platform=linux/arm/v7/x"
hostile diff_format /diff invalid_parameter "/diff?from=python:3&to=python:3&format=xml"
hostile diff_ctl /diff invalid_request "/diff?from=python%0a:3&to=python:3"
hostile diff_ctl_plat /diff invalid_request "/diff?from=python:3&to=python:3&platform=linux/amd64%1b"
hostile hist_digest $IMG invalid_parameter "/images/python@$LIST_DIGEST?view=history"
hostile hist_n0 $IMG invalid_parameter "/images/python/3.7-slim?view=history&n=0"
hostile hist_n_big $IMG invalid_parameter "/images/python/3.7-slim?view=history&n=101"
hostile hist_n_huge $IMG invalid_parameter "/images/python/3.7-slim?view=history&n=99999999999999999999999"
hostile hist_n_word $IMG invalid_parameter "/images/python/3.7-slim?view=history&n=ten"
hostile hist_n_sign $IMG invalid_parameter "/images/python/3.7-slim?view=history&n=+5"
hostile hist_n_twice $IMG invalid_parameter "/images/python/3.7-slim?view=history&n=1&n=2"
hostile hist_last $IMG invalid_parameter "/images/python/3.7-slim?view=history&last=-1"
hostile hist_last_huge $IMG invalid_parameter "/images/python/3.7-slim?view=history&last=9223372036854775808"
hostile hist_plat $IMG invalid_parameter "/images/python/3.7-slim?view=history&platform=linux/amd64"
hostile hist_ctl $IMG invalid_request "/images/python/3.7-slim?view=history&last=1%7f"

# --- admin: purge a reference (the cache's endpoint, validated here too) ----------------------------
ADM=/admin/cache/{ref}
s=$(fetch purge_noauth $ADM -X DELETE "$U/admin/cache/python/3.7-slim")
check_eq "purge without the token: 401 with a bearer challenge" '401 Bearer realm="imgmeta-admin"' \
    "$s $(header purge_noauth WWW-Authenticate)"
s=$(fetch purge $ADM -X DELETE -H "Authorization: Bearer $ADMIN_TOKEN" "$U/admin/cache/python/3.7-slim")
check_eq "purge with the token: 200, the tag removed" "200 1" "$s $(jqb purge .removed.tags)"
s=$(fetch after_purge $IMG "$U/images/python/3.7-slim")
check_eq "after the purge the image is resolved again" "200 miss" "$s $(header after_purge X-Imgmeta-Cache)"

# --- batch: POST /images ---------------------------------------------------------------------------
BATCH=/images
# bpost NAME BODY [CURL-ARGS...]: POST /images with BODY (a file's contents when
# it starts with @) as JSON, recorded; the status in $R/NAME.status.
bpost() {
    local name=$1 body=$2
    shift 2
    efetch "$name" $BATCH -X POST -H 'Content-Type: application/json' --data-binary "$body" "$@" "$U/images"
}
bpost batch '{"references":["python:3.7-slim","python/3.7-nope","python:3"],"view":"summary"}'
check_eq "batch: 200, results in request order: 200, 404, 200" \
    '200 ["python:3.7-slim","python/3.7-nope","python:3"] [200,404,200]' \
    "$(cat "$R/batch.status") $(jq -c '[.results[].reference]' "$R/batch.b") $(jq -c '[.results[].status]' "$R/batch.b")"
check_eq "batch: the missing reference's error is not_found" not_found "$(jqb batch '.results[1].error.code')"
raw b_get "$U/images/python/3.7-slim?view=summary" >/dev/null
check "batch: an image is what GET ?view=summary answers" \
    eval "diff <(jq -c '.results[0].image' '$R/batch.b') <(jq -c . '$R/b_get.b') >/dev/null"
bpost batch_full '{"references":["python:3.7-slim"]}'
check "batch: view defaults to full, the GET's answer" \
    eval "diff <(jq -c '.results[0].image' '$R/batch_full.b') <(jq -c . '$R/json.b') >/dev/null"
bpost batch_cold '{"references":["python:latest","python:latest","python:3.7"]}'
check_eq "batch: uncached references resolved (twice the same one, coalesced or cached)" \
    '200 [200,200,200] same' \
    "$(cat "$R/batch_cold.status") $(jq -c '[.results[].status]' "$R/batch_cold.b") $([ "$(jq -c '.results[0].image' "$R/batch_cold.b")" = "$(jq -c '.results[1].image' "$R/batch_cold.b")" ] && echo same)"
# Concurrently: three references behind the slow front (each answers 504 after
# the daemon's upstream timeout) are resolved at once, as /metrics shows while
# the batch runs.
batch_concurrent() {
    local pid i seen=0 n
    bpost batch_slow '{"references":["slow.test/library/python:3.7-slim","slow.test/library/python:3","slow.test/library/python:latest"]}' &
    pid=$!
    for i in $(seq 1 100); do
        n=$(curl -s "$U/metrics" | sed -n 's/^imgmeta_resolutions_in_flight //p')
        [ "${n:-0}" -gt "$seen" ] && seen=$n
        [ "$seen" -ge 3 ] && break
        sleep 0.02
    done
    wait "$pid"
    check_eq "batch: its three uncached references resolved at once (resolutions in flight)" 3 "$seen"
    check_eq "batch: each slow reference is its own 504 upstream_timeout, in order" \
        '200 [504,504,504] ["upstream_timeout","upstream_timeout","upstream_timeout"] ["slow.test/library/python:3.7-slim","slow.test/library/python:3","slow.test/library/python:latest"]' \
        "$(cat "$R/batch_slow.status") $(jq -c '[.results[].status]' "$R/batch_slow.b") $(jq -c '[.results[].error.code]' "$R/batch_slow.b") $(jq -c '[.results[].reference]' "$R/batch_slow.b")"
}
batch_concurrent
bpost batch_badref '{"references":["Python/3.7-slim","python:3.7-slim","python?x=1",""]}'
check_eq "batch: bad references inside are 400 invalid_reference each, the others answered" \
    '200 [400,200,400,400] ["invalid_reference",null,"invalid_reference","invalid_reference"]' \
    "$(cat "$R/batch_badref.status") $(jq -c '[.results[].status]' "$R/batch_badref.b") $(jq -c '[.results[].error.code]' "$R/batch_badref.b")"
# hostile bodies: clear 4xx, and the daemon answers on
bpost b_notjson 'not json'
error_is b_notjson 400 invalid_body
bpost b_type '{"references":"python:3.7-slim"}'
error_is b_type 400 invalid_body
bpost b_elem '{"references":[1,2]}'
error_is b_elem 400 invalid_body
bpost b_extra '{"references":["python:3.7-slim"],"more":true}'
error_is b_extra 400 invalid_body
bpost b_dup '{"references":["a:1"],"references":["b:1"]}'
error_is b_dup 400 invalid_body
bpost b_view '{"references":["python:3.7-slim"],"view":"tiny"}'
error_is b_view 400 invalid_parameter
bpost b_empty '{"references":[]}'
error_is b_empty 400 too_many_references
many=$(printf '"python:3.7-slim",%.0s' $(seq 1 100))
bpost b_101 "{\"references\":[${many}\"python:3\"]}"
error_is b_101 400 too_many_references
bpost b_100 "{\"references\":[${many%,}],\"view\":\"summary\"}"
check_eq "batch: 100 references are answered" "200 100" "$(cat "$R/b_100.status") $(jqb b_100 '.results | length')"
head -c 70000 /dev/zero | tr '\0' ' ' >"$IT_DIR/big.json"
bpost b_big "@$IT_DIR/big.json"
error_is b_big 413 body_too_large
efetch b_ctype $BATCH -X POST -H 'Content-Type: text/plain' --data-binary '{"references":["python:3"]}' "$U/images"
error_is b_ctype 415 unsupported_media_type
efetch b_get "#/components/responses/BatchMethodNotAllowed" -X PUT "$U/images"
error_is b_get 405 method_not_allowed
check_eq "PUT /images: Allow: GET, HEAD, POST" "GET, HEAD, POST" "$(header b_get Allow)"
check_eq "after the hostile batches the daemon still answers" 200 \
    "$(curl -s -o /dev/null -w '%{http_code}' "$U/images/python/3.7-slim")"

# --- --access-log-buffer: access lines written in batches, none lost ------------------------------
: >"$IT_DIR/lb.log"
"$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/lb.db" --mirror "docker.io=$FRONT_URL" \
    --access-log-buffer 65536 >"$IT_DIR/lb.log" 2>&1 &
LB_PID=$!
it_record "$LB_PID"
daemon_ready "$IT_DIR/lb.log" "$LB_PID" || die "cannot start the buffered-log daemon"
LB_URL=$DAEMON_URL
for i in $(seq 1 30); do curl -s -o /dev/null "$LB_URL/images/python/3.7-slim?n=$i"; done
curl -s -o /dev/null "$LB_URL/no/such/route"
n=0
for _ in $(seq 1 50); do # the flusher writes them within 200 ms; 5 s at most
    n=$(grep 'event=access' "$IT_DIR/lb.log" | grep -vc 'path="/healthz"')
    [ "$n" -ge 31 ] && break
    sleep 0.1
done
check_eq "--access-log-buffer: the access lines reach the log without a stop (31: 30 images and a 404)" \
    31 "$n"
for i in $(seq 1 20); do curl -s -o /dev/null "$LB_URL/images/python/3.7-slim?m=$i"; done
kill -TERM "$LB_PID"
wait "$LB_PID"
rc=$?
check_eq "... SIGTERM right after 20 more: exit 0, every access line written (51), event=stopped the last line" \
    "0 51 stopped" "$rc $(grep 'event=access' "$IT_DIR/lb.log" | grep -vc 'path="/healthz"') $(tail -n 1 "$IT_DIR/lb.log" | grep -o 'event=stopped' | cut -d= -f2)"
check "... lines whole: every line of the log starts with ts=" \
    sh -c "! grep -v '^ts=' '$IT_DIR/lb.log'"

# --- the contract -----------------------------------------------------------------------------------
# The pinned linter and validator (tests/openapi/package-lock.json) are
# installed before the tests run, next to the binaries, by
# tests/openapi/install.sh (`make test` and `make check` run it); this test
# only uses them.
TOOLS=${IMGMETA_OPENAPI_TOOLS:-$(cd "$(dirname "$IMGMETA")" && pwd)/openapi-tools}
if cmp -s "$OPENAPI_DIR/package-lock.json" "$TOOLS/node_modules/.imgmeta-installed-lock" &&
    cmp -s "$OPENAPI_DIR/validate.mjs" "$TOOLS/validate.mjs"; then
    check "openapi.yaml passes redocly lint" eval \
        "(cd '$IMGMETA_SOURCE_DIR' && '$TOOLS/node_modules/.bin/redocly' lint --config redocly.yaml openapi.yaml) >'$IT_DIR/lint.log' 2>&1 || { cat '$IT_DIR/lint.log'; false; }"
    if node "$TOOLS/validate.mjs" "$IMGMETA_SOURCE_DIR/openapi.yaml" "$CASES" >"$IT_DIR/validate.log" 2>&1; then
        it_pass "every answer ($(wc -l <"$CASES")) validates against openapi.yaml"
    else
        it_fail "every answer validates against openapi.yaml"
        grep -v '^ok' "$IT_DIR/validate.log" | head -n 30
    fi
else
    it_fail "the OpenAPI tools of tests/openapi/package-lock.json are not installed in $TOOLS: run tests/openapi/install.sh $TOOLS (make test and make check do)"
fi

# --- SIGTERM: a slow request in flight completes, the database closes --------------------------------
drain() {
    local front_pid daemon_pid curl_pid code rc
    start_front --delay-ms 300 || return 1
    front_pid=$FRONT_PID
    "$IMGMETA" serve --listen 127.0.0.1:0 --db "$IT_DIR/drain.db" \
        --mirror "docker.io=$FRONT_URL" --shutdown-timeout 30 >"$IT_DIR/drain.log" 2>&1 &
    daemon_pid=$!
    it_record "$daemon_pid"
    daemon_ready "$IT_DIR/drain.log" "$daemon_pid" || return 1
    curl -s -o "$IT_DIR/drain.json" -w '%{http_code}' --max-time 60 \
        "http://127.0.0.1:$DAEMON_PORT/images/python/3.7-slim" >"$IT_DIR/drain.code" &
    curl_pid=$!
    sleep 0.5 # the cold resolution takes several front round trips of 300 ms
    kill -TERM "$daemon_pid"
    sleep 0.2
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$DAEMON_PORT/healthz")
    wait "$curl_pid"
    wait "$daemon_pid"
    rc=$?
    check_eq "SIGTERM: no new connections accepted while draining" 000 "$code"
    check_eq "SIGTERM: the request in flight completes with 200" 200 "$(cat "$IT_DIR/drain.code")"
    check_eq "SIGTERM: the daemon exits 0 after it" 0 "$rc"
    check "SIGTERM: drain and stop are logged" eval \
        "grep -q 'event=draining' '$IT_DIR/drain.log' && grep -q 'event=stopped' '$IT_DIR/drain.log'"
    check "SIGTERM: the database is closed cleanly (no WAL left)" [ ! -s "$IT_DIR/drain.db-wal" ]
}
drain || it_fail "SIGTERM drain test could not run"

# The main daemon, after everything above: exits 0 on SIGTERM, and nothing in its
# log from a sanitizer (ASan/UBSan builds: leaks make the exit status non-zero).
stop_main() {
    kill -TERM "$MAIN_PID" && wait "$MAIN_PID" &&
        ! grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error:' "$IT_DIR/daemon.log"
}
check "the daemon stops cleanly on SIGTERM (exit 0, no sanitizer report)" stop_main

finish
