-- wrk: POST PATH {"keys":[...]} with POST_KEYS random keys in [0, KEYS),
-- pausing BATCH_DELAY_MS before each (a low rate beside other traffic)
local path = os.getenv("BENCH_PATH") or "/batch"
local keys = tonumber(os.getenv("KEYS") or "100000")
local n = tonumber(os.getenv("POST_KEYS") or "1000")
local pause = tonumber(os.getenv("BATCH_DELAY_MS") or "20")

math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
    local t = {}
    for i = 1, n do
        t[i] = string.format('"user_%07d"', math.random(0, keys - 1))
    end
    return wrk.format("POST", path,
                      { ["Content-Type"] = "application/json" },
                      '{"keys":[' .. table.concat(t, ",") .. ']}')
end

delay = function()
    return pause
end
