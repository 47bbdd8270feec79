# cost.sh - sourced by bench.sh for BENCH_ONLY=cost: what one answer costs the
# daemon, in CPU time, on section 3's pinned random mix and on one image.
#
#   BENCH_ONLY=cost make bench            # COST_ROUNDS (3), COST_PERF (0)
#
# One daemon on CPU PIN_SRV over a copy of the filled database (SCALE_N
# images), wrk -t1 on CPU PIN_WRK; for each run, the daemon's CPU time (the
# sum over its threads' /proc/PID/task/*/schedstat) divided by the requests
# wrk saw answered (its req/s times WRK_S). Req/s drift with the machine; CPU per request tells where
# a difference between the mix and one image comes from. COST_PERF=1 adds a
# `perf record -g` of one more mix run and one more one-image run and leaves
# their reports (cost-perf-mix.txt, cost-perf-one.txt) next to the raw
# outputs (BENCH_KEEP=1 keeps them). Prints; writes no BENCHMARKS.md.
[ -z "$PIN_SKIP" ] || die "cost: $PIN_SKIP"
COST_ROUNDS=${COST_ROUNDS:-3}
filled_db cost-fill
D_DB_FROM=$D_DB D_CPU=$PIN_SRV daemon cost "$REGISTRY_URL" --tag-ttl 3600 ||
    die "cannot start imgmeta"
# cost_run KIND: one pinned wrk run (KIND mix or one); prints "req/s CPU-us/request".
cost_run() {
    local n=$SCALE_N c0 out
    [ "$1" = one ] && n=1
    c0=$(cpu_ns "$D_PID")
    out=$(BENCH_N=$n BENCH_PREFIX=/images/python/s WRK_T=1 WRK_CPU=$PIN_WRK \
        wrk_run "cost-$1" "$D_URL/" "$LUA/random.lua")
    [ -n "${out%% *}" ] && [ "${out%% *}" != 0 ] || die "cost: wrk answered nothing ($1)"
    echo "${out%% *} $(calc "($(cpu_ns "$D_PID") - $c0) / 1000 / (${out%% *} * $WRK_S)" 2)"
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
    for kind in mix one; do
        perf record -g -o "$IT_DIR/cost-perf-$kind.data" -p "$D_PID" -- sleep "$WRK_S" \
            >/dev/null 2>&1 &
        pp=$!
        cost_run "$kind" >/dev/null
        wait "$pp"
        perf report -i "$IT_DIR/cost-perf-$kind.data" --no-children --stdio -g none \
            --percent-limit 0.3 >"$IT_DIR/cost-perf-$kind.txt" 2>/dev/null
    done
    log "cost: perf reports in $IT_DIR/cost-perf-mix.txt and cost-perf-one.txt"
fi
stop "$D_PID"
cmed() { awk -v k="$1" '{print $k}' "$IT_DIR/cost.rounds" | median; }
log "cost: medians over $COST_ROUNDS rounds: mix $(cmed 2) req/s, $(cmed 3) us CPU/request;" \
    "one image $(cmed 4) req/s, $(cmed 5) us CPU/request;" \
    "mix-to-one $(calc "$(awk '{print $2 / $4}' "$IT_DIR/cost.rounds" | median)" 3)" \
    "(req/s, median of the rounds' ratios)"
if [ "${BENCH_KEEP:-0}" = 1 ]; then
    stop_all
    trap - EXIT
    log "raw outputs kept in $IT_DIR"
fi
