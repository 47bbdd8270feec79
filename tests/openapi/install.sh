#!/bin/sh
# install.sh DIR - installs the pinned OpenAPI linter and validator
# (package-lock.json: redocly, ajv) into DIR/node_modules with `npm ci`, beside
# a copy of validate.mjs (tests/npm-ci.sh does it). The `api` test
# (tests/integration/api.sh) uses DIR and installs nothing itself.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
exec "$(dirname "$0")/../npm-ci.sh" "$(dirname "$0")" "$1"
