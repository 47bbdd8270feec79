# ab.sh - sourced by bench.sh for BENCH_ONLY=ab: two imgmeta builds compared
# on section 3's pinned random mix, both under load at once.
#
#   BENCH_ONLY=ab AB_A=/path/to/imgmeta-old AB_B=/path/to/imgmeta-new make bench
#
# Why at once: the machine's speed drifts by more than 15% within a minute, so
# two builds measured one after the other differ by as much as any change to
# the code does. Here both daemons run on CPU PIN_SRV (the scheduler splits
# it between them), each under its own wrk (half of WRK_C connections) on
# CPU PIN_WRK: both meet the same machine at the same moment, and their ratio
# holds within ~1% from round to round. A daemon's own placement still counts
# for a few % (the same build in both places differed by 2-4%, and by a
# different amount in another pair of processes), so each pass starts a fresh
# pair and the passes alternate which build is started first; the verdict is
# the median over all rounds of all passes.
#
# AB_PASSES (6) pairs of daemons, AB_ROUNDS (2) rounds each of the mix over
# SCALE_N images and of one image, WRK_S seconds a run. Prints the rounds and
# the medians of B/A for the mix, for one image, and for the mix-to-one ratio
# (the figure section 3's target is about); writes no BENCHMARKS.md.
[ -x "${AB_A:-}" ] && [ -x "${AB_B:-}" ] || die "ab: AB_A and AB_B must name imgmeta binaries"
[ -z "$PIN_SKIP" ] || die "ab: $PIN_SKIP"
AB_PASSES=${AB_PASSES:-6}
AB_ROUNDS=${AB_ROUNDS:-2}
log "A/B: A=$AB_A B=$AB_B: $AB_PASSES passes of $AB_ROUNDS rounds, $SCALE_N images"
filled_db ab-fill
AB_DB=$D_DB

# ab_pair BIN0 BIN1: a daemon of each on CPU PIN_SRV on copies of the filled
# database, each warmed by one unmeasured mix run; sets AB_URL0/1, AB_PID0/1.
ab_pair() {
    local slot bin
    for slot in 0 1; do
        bin=$1
        [ "$slot" = 1 ] && bin=$2
        IMGMETA=$bin D_DB_FROM=$AB_DB D_CPU=$PIN_SRV daemon "ab$slot" "$REGISTRY_URL" \
            --tag-ttl 3600 || die "cannot start $bin"
        eval "AB_URL$slot=\$D_URL AB_PID$slot=\$D_PID"
        BENCH_N=$SCALE_N BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK \
            wrk_run "ab-warm$slot" "$D_URL/" "$LUA/random.lua" >/dev/null
    done
    cmp -s <(curl -s "$AB_URL0/images/python/s$SCALE_N") <(curl -s "$AB_URL1/images/python/s$SCALE_N") ||
        die "ab: the two builds answer different bytes"
}
# ab_par KIND: both daemons under load at once (KIND mix or one); prints
# "req/s of slot 0, req/s of slot 1, CPU ms of slot 0, of slot 1".
ab_par() {
    local c0 c1 p0 p1 n=$SCALE_N
    [ "$1" = one ] && n=1
    c0=$(cpu_ns "$AB_PID0") c1=$(cpu_ns "$AB_PID1")
    for slot in 0 1; do
        eval "url=\$AB_URL$slot"
        BENCH_N=$n BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK WRK_C=$((WRK_C / 2)) \
            wrk_run "ab-$1$slot" "$url/" "$LUA/random.lua" >"$IT_DIR/ab-$1$slot.out" &
        eval "p$slot=\$!"
    done
    wait "$p0" "$p1"
    echo "$(cut -d' ' -f1 "$IT_DIR/ab-${1}0.out") $(cut -d' ' -f1 "$IT_DIR/ab-${1}1.out")" \
        "$((($(cpu_ns "$AB_PID0") - c0) / 1000000)) $((($(cpu_ns "$AB_PID1") - c1) / 1000000))"
}
: >"$IT_DIR/ab.rounds"
for pass in $(seq 1 "$AB_PASSES"); do
    if [ $((pass % 2)) = 1 ]; then ab_pair "$AB_A" "$AB_B"; a=0; else ab_pair "$AB_B" "$AB_A"; a=1; fi
    for r in $(seq 1 "$AB_ROUNDS"); do
        set -- $(ab_par mix) $(ab_par one)
        # $1 $2: mix req/s of slots 0, 1; $3 $4 their CPU ms; $5 $6 one image; $7 $8
        if [ "$a" = 0 ]; then echo "$pass $r $1 $2 $5 $6 $3 $4"; else echo "$pass $r $2 $1 $6 $5 $4 $3"; fi |
            tee -a "$IT_DIR/ab.rounds" |
            awk '{printf "ab: pass %d round %d (A started %s): mix A %s B %s (B/A %.3f), one A %s B %s (B/A %.3f), CPU ms A %s B %s\n",
                  $1, $2, ($1 % 2 ? "first" : "second"), $3, $4, $4 / $3, $5, $6, $6 / $5, $7, $8}' >&2
    done
    stop "$AB_PID0"
    stop "$AB_PID1"
done
ab_median() { # COLUMN-EXPRESSION NAME
    awk "{print $1}" "$IT_DIR/ab.rounds" | sort -g |
        awk -v name="$2" '{v[NR] = $1} END {
            m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
            printf "B/A %-28s median %.3f, range %.3f-%.3f over %d rounds\n", name, m, v[1], v[NR], NR }'
}
{
    echo "A: $AB_A"
    echo "B: $AB_B"
    ab_median '$4 / $3' "mix req/s:"
    ab_median '$6 / $5' "one image req/s:"
    ab_median '($4 / $6) / ($3 / $5)' "mix-to-one ratio:"
} | tee "$IT_DIR/ab.txt"
