-- wrk: GET PATH?id=user_NNNNNNN&t=T with uniformly random keys in
-- [0, KEYS), as random-key.lua; T is the time the request is sent
-- (CLOCK_MONOTONIC, us), which the server sends back in X-T, so that
-- response() knows each request's own latency and files it under the
-- X-Pred-Stage it came with ("-": none).
--
-- Why not wrk's latency: before done() and --latency see it, wrk adds
-- samples for the requests a fixed-rate client would have sent while a
-- slow one was out (stats_correct: for each sample of n >= 2 x the mean
-- interval per connection, copies at n - interval, n - 2 x interval, ...).
-- A closed-loop client sends nothing of the sort, and on a two-humped
-- distribution (80% ~2 ms, 20% ~53 ms) those copies outnumber the fast
-- half: wrk's p50 lands on a made-up 13 ms.  done() prints both:
--   pct P50 P95 P99                   wrk's own (corrected), us, as lib.sh
--   raw GROUP N P50 P95 P99 MEAN      per request as sent, us; GROUP a
--                                     stage, "-" or "all"
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec_t;
int clock_gettime(int clk_id, bench_timespec_t *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec_t")
local function now_us()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1000000 + math.floor(tonumber(ts.tv_nsec) / 1000)
end

local path = os.getenv("BENCH_PATH") or "/predict"
local keys = tonumber(os.getenv("KEYS") or "1000000")

math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
    return wrk.format("GET", string.format("%s?id=user_%07d&t=%.0f", path,
                                           math.random(0, keys - 1), now_us()))
end

-- per group: the count of each 10 us bucket, the requests and the sum for
-- the mean, in one flat table ("GROUP b BUCKET", "GROUP n", "GROUP sum")
-- in each thread's own state; done() reads it through thread:get, which
-- crashes wrk 4.1 on nested tables
hist = {}

local function add(group, us)
    local k = group .. " b " .. math.floor(us / 10)
    hist[k] = (hist[k] or 0) + 1
    hist[group .. " n"] = (hist[group .. " n"] or 0) + 1
    hist[group .. " sum"] = (hist[group .. " sum"] or 0) + us
end

response = function(status, headers, body)
    local t = tonumber(headers["X-T"])
    if not t then return end
    local us = now_us() - t
    add(headers["X-Pred-Stage"] or "-", us)
    add("all", us)
end

local threads = {}

setup = function(thread)
    table.insert(threads, thread)
end

local function pct(keys_sorted, b, n, p)
    local rank, c = math.ceil(n * p / 100), 0
    for _, k in ipairs(keys_sorted) do
        c = c + b[k]
        if c >= rank then return k * 10 + 5 end
    end
    return 0
end

done = function(summary, latency, requests)
    io.write(string.format("pct %d %d %d\n", latency:percentile(50),
                           latency:percentile(95), latency:percentile(99)))
    local all = {}
    for _, thread in ipairs(threads) do
        for k, c in pairs(thread:get("hist") or {}) do
            local g, what, b = k:match("^(%S+) (%S+) ?(%d*)$")
            local a = all[g]
            if not a then a = { n = 0, sum = 0, b = {} }; all[g] = a end
            if what == "b" then
                b = tonumber(b)
                a.b[b] = (a.b[b] or 0) + c
            else
                a[what] = a[what] + c
            end
        end
    end
    for g, a in pairs(all) do
        local ks = {}
        for k in pairs(a.b) do table.insert(ks, k) end
        table.sort(ks)
        io.write(string.format("raw %s %d %d %d %d %d\n", g, a.n,
                               pct(ks, a.b, a.n, 50), pct(ks, a.b, a.n, 95),
                               pct(ks, a.b, a.n, 99), a.sum / a.n))
    end
end
