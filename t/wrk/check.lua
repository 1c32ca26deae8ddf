-- wrk script for the failure tests: random keys PREFIX0..PREFIX(N-1) on
-- PATH?id=KEY, and every answer checked against what the scenario allows.
-- The location echoes the key in X-Key, so an answer is matched to its
-- request whatever the connection.
--
--   wrk ... -s t/wrk/check.lua URL -- PATH PREFIX N STATUS BODY[|BODY...]
--
-- BODY is a template in which KEY stands for the request's key.  done()
-- prints one line that t/800-failure-load.t reads.

local threads = {}
local counter = 0

function setup(thread)
    counter = counter + 1
    thread:set("id", counter)
    table.insert(threads, thread)
end

function init(args)
    path, prefix, nkeys = args[1], args[2], tonumber(args[3])
    want_status = tonumber(args[4])
    bodies = {}
    for b in string.gmatch(args[5], "[^|]+") do
        table.insert(bodies, b)
    end
    math.randomseed(id * 7919 + os.time())
    n, bad, badstatus = 0, 0, 0
    sample = ""
end

function request()
    local key = prefix .. math.random(0, nkeys - 1)
    return wrk.format("GET", path .. "?id=" .. key)
end

function response(status, headers, body)
    local key = headers["X-Key"] or ""
    local ok = false

    n = n + 1

    if status ~= want_status then
        badstatus = badstatus + 1
    end

    for _, b in ipairs(bodies) do
        if body == string.gsub(b, "KEY", key) then
            ok = true
            break
        end
    end

    if not ok then
        bad = bad + 1
        if sample == "" then
            sample = status .. " " .. key .. " " .. body
        end
    end
end

function done(summary, latency, requests)
    local tn, tbad, tstatus, s = 0, 0, 0, ""
    for _, t in ipairs(threads) do
        tn = tn + t:get("n")
        tbad = tbad + t:get("bad")
        tstatus = tstatus + t:get("badstatus")
        if s == "" then s = t:get("sample") end
    end
    local e = summary.errors
    io.write(string.format("RESULT n=%d bad=%d badstatus=%d connect=%d "
        .. "read=%d write=%d timeout=%d maxms=%d sample=%s\n",
        tn, tbad, tstatus, e.connect, e.read, e.write, e.timeout,
        latency.max / 1000, s))
end
