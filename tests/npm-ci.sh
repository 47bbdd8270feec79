#!/bin/sh
# npm-ci.sh SRC DIR - installs the npm packages pinned in SRC's package-lock.json
# into DIR/node_modules with `npm ci`, beside a copy of SRC's package.json, lock
# and *.mjs; does nothing when DIR already holds this lock's install. The tests
# use DIR and install nothing themselves: `make test` and `make check` run this
# before ctest for tests/openapi (DIR: the build directory's openapi-tools/) and
# tests/browser (browser-tools/); each build directory has its own, so
# concurrent runs never share one node_modules (a lock guards DIR meanwhile).
set -eu
if [ $# -ne 2 ]; then
    echo "usage: $0 SRC DIR" >&2
    exit 2
fi
src=$(cd "$1" && pwd)
dir=$2
command -v npm >/dev/null || {
    echo "$0: needs npm (cmake/install-deps.sh test installs it)" >&2
    exit 1
}
mkdir -p "$dir"
(
    flock 9
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    for f in "$src"/*.mjs; do
        [ -e "$f" ] && cp "$f" "$dir/"
    done
    cd "$dir"
    cmp -s package-lock.json node_modules/.imgmeta-installed-lock && exit 0
    echo "installing the test tools of $src into $dir (npm ci)" >&2
    npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1 || {
        tail -n 20 npm.log >&2
        exit 1
    }
    cp package-lock.json node_modules/.imgmeta-installed-lock
) 9>"$dir.lock"
