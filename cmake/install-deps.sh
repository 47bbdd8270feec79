#!/bin/sh
# Installs the Debian packages a make target needs, only those missing.
# usage: cmake/install-deps.sh build|run|test|bench|format|container
set -eu

build="cmake gcc make pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev libsqlite3-dev libpq-dev zlib1g-dev libssl-dev"
run="$build ca-certificates"
# postgresql-15 and nginx: the replicas sharing one PostgreSQL database behind
# a load balancer (tests/integration/pg.sh, nginx.sh). The tests run their own,
# on Unix sockets in their own directories (a cluster made with
# /usr/lib/postgresql/15/bin/initdb); what the packages set up and start on
# install unless policy-rc.d forbids it (the main cluster on port 5432, nginx
# on port 80) is never used and never in their way.
# chromium: the HTML pages in a real browser (tests/browser), driven by
# puppeteer-core pointed at it (nothing is downloaded: no browser of npm's).
# buildah, podman, runc and debootstrap: the image (make container) and its test
# (tests/container.sh): built and run as root with vfs storage, chroot isolation
# and runc, its base made with debootstrap where no registry gives it.
container="buildah podman runc debootstrap"
test="$run binutils sqlite3 libcriterion-dev docker-registry curl jq clang-14 libclang-rt-14-dev apache2-utils skopeo prometheus valgrind wrk postgresql-15 nginx chromium $container"
bench="$test bc"

case "${1:-}" in
build) want=$build ;;
run) want=$run ;;
test) want=$test ;;
bench) want=$bench ;;
format) want="clang-format-14 git" ;;
container) want=$container ;;
*) echo "usage: $0 build|run|test|bench|format|container" >&2; exit 2 ;;
esac
# The OpenAPI lint and response validation (tests/openapi) run on node and npm;
# Debian's packages only when neither is there (a NodeSource node brings npm).
if { [ "$1" = test ] || [ "$1" = bench ]; } && ! command -v npm >/dev/null 2>&1; then
    want="$want nodejs npm"
fi

missing=""
for p in $want; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
[ -z "$missing" ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "missing packages:$missing (and no apt-get here: install them by hand)" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing:$missing" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
