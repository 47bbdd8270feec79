#!/usr/bin/env bash
# run-fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS] - builds the libFuzzer harnesses
# (clang-14, ASan+UBSan, -Werror) in BUILD_DIR and runs each tests/fuzz/fuzz_*.c
# for SECONDS (env IMGMETA_FUZZ_SECONDS wins; default: 90 s shared by all the
# targets, 5 to 15 s each, so the run stays under 2 minutes) over its seed corpus
# tests/fuzz/corpus/<target>/ (ctest "fuzz"; SECURITY.md).
#
# The seeds are read, never written: new inputs go to a scratch corpus in
# BUILD_DIR. A crash, leak, timeout (10 s per input) or sanitizer report fails
# the run and leaves the input in BUILD_DIR/artifacts/; copy it into the
# target's corpus directory to keep it as a regression case (every seed is
# replayed on every run).
set -u
src=${1:?usage: run-fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS]}
bld=${2:?usage: run-fuzz.sh SOURCE_DIR BUILD_DIR [SECONDS]}
ntargets=$(ls "$src"/tests/fuzz/fuzz_*.c | wc -l)
share=$((90 / (ntargets > 0 ? ntargets : 1)))
share=$((share < 5 ? 5 : share > 15 ? 15 : share))
secs=${IMGMETA_FUZZ_SECONDS:-${3:-$share}}
cc=${IMGMETA_FUZZ_CC:-clang-14}

command -v "$cc" >/dev/null || { echo "fuzz: $cc not found (Debian: clang-14 libclang-rt-14-dev)" >&2; exit 1; }
cmake -S "$src" -B "$bld" -DCMAKE_C_COMPILER="$cc" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DIMGMETA_FUZZ=ON -DIMGMETA_WERROR=ON -DIMGMETA_ASAN=ON -DIMGMETA_UBSAN=ON >/dev/null || exit 1
cmake --build "$bld" -j "$(nproc 2>/dev/null || echo 2)" >"$bld/build.log" 2>&1 || {
    tail -n 40 "$bld/build.log" >&2
    exit 1
}
mkdir -p "$bld/artifacts"
failed=0
for h in "$src"/tests/fuzz/fuzz_*.c; do
    t=$(basename "$h" .c)
    exe=$bld/tests/$t
    seeds=$src/tests/fuzz/corpus/$t
    scratch=$bld/corpus/$t
    mkdir -p "$scratch" "$bld/empty"
    [ -d "$seeds" ] || seeds=$bld/empty
    if [ ! -x "$exe" ]; then
        echo "FAIL $t: not built (add it to the foreach list in tests/CMakeLists.txt)"
        failed=1
        continue
    fi
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        "$exe" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$bld/artifacts/$t-" -print_final_stats=1 "$scratch" "$seeds" \
        >"$bld/$t.log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$bld/$t.log")
    cov=$(grep -o 'cov: [0-9]*' "$bld/$t.log" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        echo "ok   $t: ${runs:-?} inputs in ${secs}s, $cov"
    else
        echo "FAIL $t (exit $rc): see $bld/$t.log and $bld/artifacts/"
        grep -E 'ERROR|SUMMARY|runtime error' "$bld/$t.log" | head -n 5
        failed=1
    fi
done
exit "$failed"
