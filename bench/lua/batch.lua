-- POST /api/v1/check/batch with 100 new comments per request.
dofile((os.getenv("BENCH_LUA") or "bench/lua") .. "/common.lua")
request = function()
  local items = {}
  for i = 1, 100 do
    items[i] = json_comment(next_id())
  end
  local body = '{"comments":[' .. table.concat(items, ",") .. ']}'
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
