#!/usr/bin/env bash
# hardening.sh BINARY: the executable carries the hardening the build asks for
# (CMakeLists.txt, IMGMETA_HARDEN), as `checksec` or lintian's hardening check
# would see it: a position-independent executable, relocations read-only after
# start (RELRO) and resolved at start (BIND_NOW), stack protector and
# fortified libc calls in use.
set -u
bin=$1
fails=0
check() { # DESCRIPTION COMMAND...
    if "${@:2}" >/dev/null 2>&1; then echo "ok   $1"; else echo "FAIL $1"; fails=$((fails + 1)); fi
}
command -v readelf >/dev/null || { echo "FAIL readelf (binutils) is missing"; exit 1; }
check "position-independent executable (ELF type DYN)" \
    grep -q 'Type:[[:space:]]*DYN' <(readelf -h "$bin")
check "RELRO: a GNU_RELRO segment" grep -q 'GNU_RELRO' <(readelf -lW "$bin")
check "BIND_NOW: every symbol resolved at start" grep -qE 'BIND_NOW|Flags:.* NOW' <(readelf -d "$bin")
check "stack protector: __stack_chk_fail imported" grep -q '__stack_chk_fail' <(readelf --dyn-syms -W "$bin")
check "fortified libc calls: __*_chk imported" grep -qE ' __[a-z]+_chk@' <(readelf --dyn-syms -W "$bin")
echo "$fails failed"
[ "$fails" -eq 0 ]
