-- Shared by the scenario scripts (loaded with dofile from bench/lua).
-- wrk's math.random starts from the same seed in every run, so bodies are made
-- unique with a per-run token (BENCH_TOKEN, set by bench/run.py) plus a
-- per-thread id and counter, never with math.random.
token = os.getenv("BENCH_TOKEN") or tostring(os.time())
texts = {
  "Check out my channel and subscribe, I post new music videos every week",
  "The council should publish the budget before the vote, not after",
  "Great article, thanks for covering the school board meeting so carefully",
  "Win a free iPhone now at http://bit.ly/free-phone just click and claim",
  "I disagree with the mayor on the parking plan but the reporting is fair",
  "Earn 500 dollars a day working from home, message me for details",
  "Does anyone know when the bridge closure on Main Street ends?",
  "This song never gets old, still listening in 2026",
}
-- BENCH_TEXTS: a file of comment texts, one per line (bench/run.py --texts news writes
-- real news comments there); they replace the built-in texts above.
local texts_file = os.getenv("BENCH_TEXTS")
if texts_file and texts_file ~= "" then
  local loaded = {}
  for line in io.lines(texts_file) do
    if line ~= "" then loaded[#loaded + 1] = line end
  end
  if #loaded > 0 then texts = loaded end
end
counter = 0
tid = tid or 0

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function next_id()
  counter = counter + 1
  return counter
end

function comment_text(n)
  return string.format("%s (%s %d %d)", texts[n % #texts + 1], token, tid, n)
end

-- A Lua string as the inside of a JSON string: quotes, backslashes and control
-- characters escaped (the built-in texts have none; real comments do).
function json_escape(s)
  return (string.gsub(s, '[%c"\\]', function(c)
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\u%04x", string.byte(c))
  end))
end

function json_comment(n)
  return string.format(
    '{"content":"%s","author":"reader%d","author_email":"reader%d@example.com",' ..
    '"user_ip":"203.0.113.%d","user_agent":"Mozilla/5.0 (bench)","permalink":"https://news.example/a/%d"}',
    json_escape(comment_text(n)), n % 997, n % 997, n % 250, n % 50)
end

function form_escape(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    if c == " " then return "+" end
    return string.format("%%%02X", string.byte(c))
  end))
end
