-- wrk: GET PATH?keys=user_A,user_B,... with NBATCH random keys in [0, KEYS)
local path = os.getenv("BENCH_PATH") or "/batch"
local keys = tonumber(os.getenv("KEYS") or "100000")
local n = tonumber(os.getenv("NBATCH") or "10")

math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
    local t = {}
    for i = 1, n do
        t[i] = string.format("user_%07d", math.random(0, keys - 1))
    end
    return wrk.format("GET", path .. "?keys=" .. table.concat(t, ","))
end
