-- content_by_lua_file: the batch model stub that fills pred_cache zones in
-- the benches.  Answers a POST whose body holds "user_N" keys (the
-- $pred_keys_json array) with a JSON array of one value per key, in order;
-- every value has the same length (92 bytes: items padded to 4 digits)
-- and depends on the key only.
ngx.req.read_body()
local body = ngx.req.get_body_data()
if not body then
    ngx.log(ngx.ERR, "batch-model: no body in memory")
    return ngx.exit(500)
end
local out = {}
for k in body:gmatch('"user_(%d+)"') do
    local n = tonumber(k)
    out[#out + 1] = string.format('{"score":0.%06d,"segment":"s%02d",'
        .. '"model":"ctr-v7","items":[%d,%d,%d],"ts":1795300000}',
        n * 7919 % 1000000, n % 40, 1000 + n % 997, 1000 + n % 991,
        1000 + n % 983)
end
ngx.print("[", table.concat(out, ","), "]")
