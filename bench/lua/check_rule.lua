-- POST /api/v1/check from the Akismet test author: a rule decides, the model is not called.
-- Everything a check does except scoring (parse, rules, record, metrics, answer): what
-- the request costs once scoring is cheap.
dofile((os.getenv("BENCH_LUA") or "bench/lua") .. "/common.lua")
request = function()
  local n = next_id()
  local body = string.format('{"content":"%s","author":"akismet-guaranteed-spam","user_ip":"203.0.113.%d"}',
    json_escape(comment_text(n)), n % 250)
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end
