-- random.lua - wrk script: each request asks for a random one of N images,
-- BENCH_PREFIX .. k for k in 1..BENCH_N (e.g. /images/python/s1234).
-- The N requests are formatted once per thread in init: wrk calls request()
-- for every request, and formatting there would make the script, not the
-- server, the limit of a run whose wrk has one thread.
local n = tonumber(os.getenv("BENCH_N") or "1")
local prefix = os.getenv("BENCH_PREFIX") or "/images/python/s"
local reqs = {}

function init(args)
    -- wrk gives every thread its own Lua state: seed each one differently
    -- (the address of a fresh table differs between states).
    local addr = tonumber(tostring({}):match("0x(%x+)") or "0", 16) or 0
    math.randomseed(os.time() + addr % 1000003)
    for k = 1, n do
        reqs[k] = wrk.format("GET", prefix .. k)
    end
end

function request()
    return reqs[math.random(1, n)]
end
