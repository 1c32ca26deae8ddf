-- wrk: GET PATH?id=user_NNNNNNN with uniformly random keys in [0, KEYS)
local path = os.getenv("BENCH_PATH") or "/predict"
local keys = tonumber(os.getenv("KEYS") or "1000000")

math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
    return wrk.format("GET", string.format("%s?id=user_%07d", path,
                                           math.random(0, keys - 1)))
end
