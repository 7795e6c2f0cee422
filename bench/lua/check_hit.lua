-- POST /api/v1/check cycling through 16 comments: after bench/run.py's warm-up every
-- worker has seen each of them, so every measured request is a cache hit.
dofile((os.getenv("BENCH_LUA") or "bench/lua") .. "/common.lua")
function comment_text(n)  -- the same 16 texts in every thread
  return string.format("%s (%s hit %d)", texts[n % #texts + 1], token, n)
end
request = function()
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, json_comment(next_id() % 16))
end
