-- wrk: GET PATH?id=user_NNNNNNN with keys 0, 1, ... KEYS-1, then again
local path = os.getenv("BENCH_PATH") or "/predict"
local keys = tonumber(os.getenv("KEYS") or "10000")
local n = 0

request = function()
    n = (n + 1) % keys
    return wrk.format("GET", string.format("%s?id=user_%07d", path, n))
end
