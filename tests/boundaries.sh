#!/usr/bin/env bash
# boundaries.sh BUILD_DIR - the module boundaries are the compiler's (ctest
# "build.boundaries"): compiled with the include paths server/http.c is built
# with (the top of the module graph, which sees every module's interface),
# each module's public header compiles and each module's internal header
# (<module>_int.h) is not found. Reads the flags from compile_commands.json.
set -u
build=${1:?usage: boundaries.sh BUILD_DIR}
flags=$(jq -r '.[] | select(.file | endswith("/server/http.c")) | .command' \
    "$build/compile_commands.json" | grep -oE -- '-(I|isystem) ?[^ ]+|-D[^ ]+' | tr '\n' ' ')
[ -n "$flags" ] || { echo "boundaries: no compile command for server/http.c in $build" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
try() { # try HEADER WANT(ok|refused)
    printf '#include "%s"\nint boundaries_probe(void);\nint boundaries_probe(void) { return 0; }\n' "$1" >"$tmp/probe.c"
    # shellcheck disable=SC2086
    if cc -std=c17 $flags -c "$tmp/probe.c" -o "$tmp/probe.o" 2>"$tmp/err"; then got=ok; else got=refused; fi
    if [ "$got" = "$2" ]; then
        echo "ok   #include \"$1\" from server/: $got"
    else
        echo "FAIL #include \"$1\" from server/: $got, wanted $2"
        head -n 3 "$tmp/err"
        fail=1
    fi
}
for h in im.h manifest.h metrics.h outcome.h render.h registry.h store.h api.h server.h; do
    try "$h" ok
done
for h in api_int.h registry_int.h store_int.h render_int.h; do
    try "$h" refused
done
exit "$fail"
