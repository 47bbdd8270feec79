#!/usr/bin/env bash
# browser.sh IMGMETA FIXTURE REGFRONT TOOLS OUT - the HTML pages in a real
# browser (ctest "browser"): a registry filled with the python:3.7-slim replica
# and tests/browser/hostile.json (history, labels, media types, a variant and
# a Docker version carrying <script>, an attribute break-out and </svg>), the
# daemon before it, then tests/browser/browser.mjs drives Debian's chromium
# through puppeteer-core from TOOLS (tests/npm-ci.sh installed it; nothing is
# downloaded here). Screenshots at 1280 and 360 px wide go to OUT (kept).
set -u

if [ $# -ne 5 ]; then
    echo "usage: $0 IMGMETA FIXTURE REGFRONT TOOLS OUT" >&2
    exit 2
fi
. "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
lib_init "$1" "$2" "$3"
TOOLS=$4
OUT=$5
BROWSER_DIR=$IMGMETA_SOURCE_DIR/tests/browser

for tool in docker-registry node; do
    command -v "$tool" >/dev/null || die "browser: needs $tool (cmake/install-deps.sh test installs it)"
done
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] ||
    die "browser: needs chromium (cmake/install-deps.sh test installs Debian's)"
[ -d "$TOOLS/node_modules/puppeteer-core" ] && [ -d "$TOOLS/node_modules/axe-core" ] ||
    die "browser: no puppeteer-core and axe-core in $TOOLS (make check installs them: tests/npm-ci.sh tests/browser $TOOLS)"
mkdir -p "$OUT" || die "cannot make $OUT"

start_registry "$IT_DIR/registry" || die "cannot start docker-registry"
fill_fixture || die "imgmeta-fixture push failed"
"$FIXTURE" push --registry "$REGISTRY_URL" --seed "$BROWSER_DIR/hostile.json" \
    --repo library/hostile --tag 1 --out "$IT_DIR/hostile" >/dev/null ||
    die "cannot push the hostile fixture"
cat "$IT_DIR/hostile/lastmod.tsv" >>"$IT_OUT/lastmod.tsv"
start_front || die "cannot start regfront"
start_daemon || die "cannot start imgmeta serve"

# chromium keeps its profile, crash dumps and caches in a HOME of the test's own
export HOME=$IT_DIR/home
mkdir -p "$HOME"
cp "$BROWSER_DIR/browser.mjs" "$TOOLS/"
node "$TOOLS/browser.mjs" "$DAEMON_URL" /images/hostile/1 "$OUT" >"$IT_DIR/browser.out" 2>&1
rc=$?
cat "$IT_DIR/browser.out"
IT_PASSED=$((IT_PASSED + $(grep -c '^ok ' "$IT_DIR/browser.out")))
IT_FAILED=$((IT_FAILED + $(grep -c '^FAIL ' "$IT_DIR/browser.out")))
check_eq "browser.mjs exits 0" 0 "$rc"
for f in python-3.7-slim-1280.png python-3.7-slim-360.png hostile-1280.png; do
    check "screenshot $f kept in $OUT" [ -s "$OUT/$f" ]
done
check_clean_stop "$DAEMON_PID"
check_no_sanitizer_report "$IT_DIR/daemon.log"
finish
