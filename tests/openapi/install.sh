#!/bin/sh
# install.sh DIR - installs the pinned OpenAPI linter and validator
# (package-lock.json: redocly, ajv) into DIR/node_modules with `npm ci`, beside
# a copy of validate.mjs; does nothing when DIR already holds this lock's
# install. The `api` test (tests/integration/api.sh) uses DIR and installs
# nothing itself: `make test` and `make check` run this before ctest, with DIR
# the build directory's openapi-tools/ (each build directory has its own, so
# concurrent runs never share one node_modules; a lock guards DIR meanwhile).
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
src=$(cd "$(dirname "$0")" && pwd)
dir=$1
command -v npm >/dev/null || {
    echo "$0: needs npm (cmake/install-deps.sh test installs it)" >&2
    exit 1
}
mkdir -p "$dir"
(
    flock 9
    cp "$src/package.json" "$src/package-lock.json" "$src/validate.mjs" "$dir/"
    cd "$dir"
    cmp -s package-lock.json node_modules/.imgmeta-installed-lock && exit 0
    echo "installing the OpenAPI test tools into $dir (npm ci)" >&2
    npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1 || {
        tail -n 20 npm.log >&2
        exit 1
    }
    cp package-lock.json node_modules/.imgmeta-installed-lock
) 9>"$dir.lock"
