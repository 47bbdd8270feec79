#!/usr/bin/env bash
# tsan-units.sh BUILD_DIR [CRITERION_OPTION...] - every Criterion unit test
# executable (tests/unit/test_*.c) under ThreadSanitizer. Configures BUILD_DIR
# with -DIMGMETA_TSAN=ON when it has no cache yet (CC=clang-14 picks the
# compiler), builds the unit tests there and runs each of them; the options
# after BUILD_DIR go to every executable (--filter, --jobs, --verbose). Exits 1
# when a test fails or any process wrote a ThreadSanitizer report (each
# report's SUMMARY line is printed, with the log it is in), 2 on usage or build
# errors.
#
# Why Criterion does not start under TSan unaided (Snaipe/Criterion#274,
# libcriterion 2.4.1 with gcc 12 and clang-14): Criterion's sandbox (BoxFort)
# maps its shared arenas, the inheritable one at start and more for each run,
# at 0x200000000000 + (rand_r() & 0x3fffff) * 16 MiB, taking a base only when
# mincore() finds its pages unmapped, and gives up after 10 picks. TSan's
# x86_64 layout maps all of 0x200000000000-0x5fffffffffff (meta shadow, and
# PROT_NONE guards) except 0x550000000000-0x567fffffffff, the range of PIE
# binaries: 2.3% of the picks. So the first arena fails ("Could not initialize
# inheritable arena: Resource temporarily unavailable") in four runs of five,
# and when it succeeds a later one fails unchecked (SEGV in libcriterion). ASLR
# plays no part: setarch -R, --jobs 1 and one test per run (--filter) fail the
# same way. The remedy here is a preloaded rand_r that steers the picks of
# BoxFort (a seed in libcriterion's own data) into that free range; every
# other caller gets the C library's. The test processes (BoxFort re-executes
# the test binary) inherit it through LD_PRELOAD.
#
# Reports go to BUILD_DIR/tsan-units/<test>.<pid> (TSAN_OPTIONS log_path);
# TSAN_OPTIONS from the environment are added (suppressions=FILE, ...). Where
# TSan itself stops with "unexpected memory mapping" (kernels with more than
# 28 bits of mmap randomisation), the executable is run again with ASLR off.
set -u
usage() {
    echo "usage: tsan-units.sh BUILD_DIR [CRITERION_OPTION...]" >&2
    exit 2
}
bld=${1:-}
[ -n "$bld" ] || usage
shift
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$bld" || exit 2
bld=$(cd "$bld" && pwd)

# Configure (a new tree) or check (an existing one) that it is a TSan build.
cache=$bld/CMakeCache.txt
if [ ! -f "$cache" ]; then
    cmake -S "$src" -B "$bld" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DIMGMETA_TESTS=ON \
        -DIMGMETA_TSAN=ON -DIMGMETA_WERROR=ON >/dev/null || exit 2
elif ! grep -q '^IMGMETA_TSAN:BOOL=ON$' "$cache"; then
    echo "tsan-units.sh: $bld is not configured with -DIMGMETA_TSAN=ON" >&2
    exit 2
fi

# One executable per module, test_<module>, from test_<module>.c and its
# test_<module>_<topic>.c files (tests/CMakeLists.txt): build them, then find them.
names=()
for f in "$src"/tests/unit/test_*.c; do
    m=$(basename "$f" .c)
    m=${m#test_}
    n=test_${m%%_*}
    case " ${names[*]:-} " in *" $n "*) continue ;; esac
    names+=("$n")
done
[ ${#names[@]} -gt 0 ] || { echo "tsan-units.sh: no tests/unit/test_*.c" >&2; exit 2; }
out=$bld/tsan-units
mkdir -p "$out" || exit 2
cmake --build "$bld" -j "$(nproc 2>/dev/null || echo 2)" --target "${names[@]}" \
    >"$out/build.log" 2>&1 || {
    tail -n 40 "$out/build.log" >&2
    exit 2
}

# The rand_r that places BoxFort's arenas where TSan leaves room (above).
cat >"$out/bxf-arena.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>

int rand_r(unsigned *seed)
{
    static int (*real)(unsigned *);
    Dl_info in;
    if (!real)
        real = (int (*)(unsigned *))dlsym(RTLD_NEXT, "rand_r");
    int r = real(seed);
    /* BoxFort's seed is a static of libcriterion: its picks only */
    if (dladdr(seed, &in) && in.dli_fname && strstr(in.dli_fname, "libcriterion"))
        r = 0x350000 + (int)((unsigned)r % 0x18000); /* 0x5500.. to 0x567f.. */
    return r;
}
EOF
"${CC:-cc}" -O2 -fPIC -shared -o "$out/bxf-arena.so" "$out/bxf-arena.c" -ldl || exit 2

# run NAME EXE [setarch...]: the executable in its directory, as ctest runs it.
run() {
    local name=$1 exe=$2
    shift 2
    (cd "$(dirname "$exe")" &&
        IMGMETA_SOURCE_DIR=$src LD_PRELOAD=$out/bxf-arena.so \
            TSAN_OPTIONS="log_path=$out/$name second_deadlock_stack=1 ${TSAN_OPTIONS:-}" \
            timeout "${TSAN_UNITS_TIMEOUT:-900}" "$@" "$exe" "${criterion_args[@]}") \
        >"$out/$name.out" 2>&1
}

criterion_args=("$@")
failed=0
for name in "${names[@]}"; do
    exe=$(find "$bld" -type f -perm -u+x -name "$name" -print -quit)
    if [ -z "$exe" ]; then
        echo "FAIL $name: no executable in $bld"
        failed=1
        continue
    fi
    rm -f "$out/$name".[0-9]*
    run "$name" "$exe"
    rc=$?
    if grep -qs 'unexpected memory mapping' "$out/$name.out" "$out/$name".[0-9]*; then
        rm -f "$out/$name".[0-9]*
        run "$name" "$exe" setarch "$(uname -m)" -R
        rc=$?
    fi
    reports=$(cat "$out/$name".[0-9]* 2>/dev/null | grep -c 'ThreadSanitizer')
    tally=$(grep -h 'Synthesis' "$out/$name.out" | sed 's/.*Synthesis: //')
    if [ "$rc" -eq 0 ] && [ "$reports" -eq 0 ]; then
        echo "ok   $name: ${tally:-no tally}"
        continue
    fi
    failed=1
    echo "FAIL $name: exit $rc, ${tally:-no tally} ($out/$name.out)"
    grep -h '^\[FAIL\]\|^criterion:' "$out/$name.out" | head -n 10 | sed 's/^/     /'
    for log in "$out/$name".[0-9]*; do
        [ -f "$log" ] || continue
        grep -h 'SUMMARY: ThreadSanitizer\|ThreadSanitizer: CHECK failed' "$log" |
            sort | uniq -c | sed "s|\$| ($log)|; s/^/    /"
    done
done
exit "$failed"
