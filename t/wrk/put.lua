-- wrk script for the failure tests: rewrites random keys PREFIX0..
-- PREFIX(N-1) through the admin API, each time with one of the BODY
-- templates (KEY stands for the key), so that entries of different sizes
-- free and reuse each other's memory while readers run.
--
--   wrk ... -s t/wrk/put.lua URL -- PATH PREFIX N BODY[|BODY...]
--
-- done() prints one line: RESULT n=... bad=... (answers other than 200).

local threads = {}

function setup(thread)
    table.insert(threads, thread)
    thread:set("id", #threads)
end

function init(args)
    path, prefix, nkeys = args[1], args[2], tonumber(args[3])
    bodies = {}
    for b in string.gmatch(args[4], "[^|]+") do
        table.insert(bodies, b)
    end
    math.randomseed(id * 104729 + os.time())
    n, bad = 0, 0
end

function request()
    local key = prefix .. math.random(0, nkeys - 1)
    local body = string.gsub(bodies[math.random(1, #bodies)], "KEY", key)
    return wrk.format("PUT", path .. key, nil, body)
end

function response(status, headers, body)
    n = n + 1
    if status ~= 200 then
        bad = bad + 1
    end
end

function done(summary, latency, requests)
    local tn, tbad = 0, 0
    for _, t in ipairs(threads) do
        tn = tn + t:get("n")
        tbad = tbad + t:get("bad")
    end
    io.write(string.format("RESULT n=%d bad=%d\n", tn, tbad))
end
