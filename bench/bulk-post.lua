-- wrk: POST PATH with the JSON Lines body in BULK_FILE, pausing
-- BULK_DELAY_MS before each (0: as fast as the worker takes them)
local path = os.getenv("BENCH_PATH") or "/admin/bulk"
local file = assert(io.open(os.getenv("BULK_FILE"), "rb"))
local body = file:read("*a")
file:close()
local pause = tonumber(os.getenv("BULK_DELAY_MS") or "0")

request = function()
    return wrk.format("POST", path,
                      { ["Content-Type"] = "application/x-ndjson" }, body)
end

delay = function()
    return pause
end
