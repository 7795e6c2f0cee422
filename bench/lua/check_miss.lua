-- POST /api/v1/check (or the ceiling's /) with a comment never sent before: a cache miss.
dofile((os.getenv("BENCH_LUA") or "bench/lua") .. "/common.lua")
request = function()
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, json_comment(next_id()))
end
