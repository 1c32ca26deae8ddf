-- wrk: GET PATH?id=user_NNNNNNN&QUERY with random keys in [0, KEYS)
local path = os.getenv("BENCH_PATH") or "/reco"
local keys = tonumber(os.getenv("KEYS") or "10000")
local query = os.getenv("BENCH_QUERY") or ""

math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))

request = function()
    return wrk.format("GET", string.format("%s?id=user_%07d%s", path,
                                           math.random(0, keys - 1), query))
end
