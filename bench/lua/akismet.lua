-- Akismet POST /1.1/comment-check, form-encoded, a new comment each request.
dofile((os.getenv("BENCH_LUA") or "bench/lua") .. "/common.lua")
key = os.getenv("BENCH_AKISMET_KEY") or ""
request = function()
  local n = next_id()
  local body = table.concat({
    "api_key=" .. key,
    "blog=" .. form_escape("https://bench.example"),
    "user_ip=203.0.113." .. (n % 250),
    "user_agent=" .. form_escape("Mozilla/5.0 (bench)"),
    "referrer=" .. form_escape("https://news.example/"),
    "permalink=" .. form_escape("https://bench.example/a/" .. (n % 50)),
    "comment_type=comment",
    "comment_author=reader" .. (n % 997),
    "comment_author_email=" .. form_escape("reader" .. (n % 997) .. "@example.com"),
    "comment_content=" .. form_escape(comment_text(n)),
    "blog_lang=en",
    "blog_charset=UTF-8",
  }, "&")
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
