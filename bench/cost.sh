# cost.sh - sourced by bench.sh for BENCH_ONLY=cost: what one answer costs the
# daemon, in CPU time, on section 3's pinned random mix and on one image.
#
#   BENCH_ONLY=cost make bench            # COST_ROUNDS (3), COST_PERF (0)
#
# One daemon on CPU PIN_SRV over a copy of the filled database (SCALE_N
# images), wrk -t1 on CPU PIN_WRK; for each run, the daemon's CPU time (the
# sum over its threads' /proc/PID/task/*/schedstat) divided by the requests
# wrk saw answered (its req/s times WRK_S). Req/s drift with the machine; CPU
# per request tells where a difference between the mix and one image comes
# from. COST_PERF=1 adds a `perf record -g` of one more mix run and one more
# one-image run and leaves their reports (perf-cost-mix.txt,
# perf-cost-one.txt) next to the raw outputs (BENCH_KEEP=1 keeps them).
# Prints; writes no BENCHMARKS.md.
[ -z "$PIN_SKIP" ] || die "cost: $PIN_SKIP"
COST_ROUNDS=${COST_ROUNDS:-3}
filled_db cost-fill
D_DB_FROM=$D_DB D_CPU=$PIN_SRV daemon cost "$REGISTRY_URL" --tag-ttl 3600 ||
    die "cannot start imgmeta"
# cost_run KIND: one pinned wrk run (KIND mix or one); prints "req/s CPU-us/request".
cost_run() {
    local n=$SCALE_N c0 rps
    [ "$1" = one ] && n=1
    c0=$(cpu_ns "$D_PID")
    rps=$(BENCH_N=$n BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK \
        wrk_run "cost-$1" "$D_URL/" "$LUA/random.lua")
    rps=${rps%% *}
    [ -n "$rps" ] && [ "$rps" != 0 ] || die "cost: wrk answered nothing ($1)"
    echo "$rps $(calc "($(cpu_ns "$D_PID") - $c0) / 1000 / ($rps * $WRK_S)" 2)"
}
cost_run mix >/dev/null # brings the answers into the LRU and the answers file
: >"$IT_DIR/cost.rounds"
for r in $(seq 1 "$COST_ROUNDS"); do
    set -- $(cost_run mix) $(cost_run one)
    [ $# = 4 ] || die "cost: a run failed (raw outputs in $IT_DIR with BENCH_KEEP=1)"
    echo "$r $1 $2 $3 $4" >>"$IT_DIR/cost.rounds"
    log "cost: round $r: mix $1 req/s, $2 us CPU/request; one image $3 req/s, $4 us CPU/request"
done
if [ "${COST_PERF:-0}" = 1 ] && command -v perf >/dev/null; then
    BENCH_N=$SCALE_N BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK PERF_PID=$D_PID \
        perf_run cost-mix "$D_URL/" "$LUA/random.lua"
    BENCH_N=1 BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK PERF_PID=$D_PID \
        perf_run cost-one "$D_URL/" "$LUA/random.lua"
    log "cost: perf reports in $IT_DIR/perf-cost-mix.txt and perf-cost-one.txt"
fi
stop "$D_PID"
cmed() { awk -v k="$1" '{print $k}' "$IT_DIR/cost.rounds" | median; }
log "cost: medians over $COST_ROUNDS rounds: mix $(cmed 2) req/s, $(cmed 3) us CPU/request;" \
    "one image $(cmed 4) req/s, $(cmed 5) us CPU/request;" \
    "mix-to-one $(calc "$(awk '{print $2 / $4}' "$IT_DIR/cost.rounds" | median)" 3)" \
    "(req/s, median of the rounds' ratios)"
keep_raw
