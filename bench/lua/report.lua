-- Shared by the scenario scripts: per-thread counters and one JSON line at the end.
--
-- wrk loads a script once in its main Lua state and once per thread. setup() runs in the main
-- state for each thread (it numbers them and keeps them), init() and response() run in the
-- thread's own state, done() in the main state, where it reads each thread's counters back.

local M = {}

non2xx = 0        -- responses outside 200-299, per thread
codes = {}        -- their status codes, per thread
sample = ""       -- the first non-2xx body, to say what went wrong
dry = 0           -- 1 when the thread ran out of single-use tokens
used = 0          -- tokens taken from the pool
pool_size = 0

local threads = {}

function M.setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function M.count(status, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    local key = tostring(status)
    codes[key] = (codes[key] or 0) + 1
    if sample == "" and body then
      sample = string.sub(body, 1, 300)
    end
  end
end

local function quote(s)
  s = string.gsub(s, '[%c"\\]', function(c)
    return string.format("\\u%04x", string.byte(c))
  end)
  return '"' .. s .. '"'
end

local function encode(value)
  local kind = type(value)
  if kind == "table" and #value > 0 then
    local parts = {}
    for _, v in ipairs(value) do
      table.insert(parts, encode(v))
    end
    return "[" .. table.concat(parts, ",") .. "]"
  elseif kind == "table" then
    local parts = {}
    for k, v in pairs(value) do
      table.insert(parts, quote(tostring(k)) .. ":" .. encode(v))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif kind == "string" then
    return quote(value)
  elseif kind == "number" then
    return string.format("%.17g", value)
  elseif kind == "boolean" then
    return tostring(value)
  end
  return "null"
end

function M.done(summary, latency, requests, extra_names)
  local per_thread = {}
  for _, t in ipairs(threads) do
    local row = {
      non2xx = t:get("non2xx"), codes = t:get("codes"), sample = t:get("sample"),
      dry = t:get("dry"), used = t:get("used"), pool_size = t:get("pool_size"),
    }
    for _, name in ipairs(extra_names or {}) do
      row[name] = t:get(name)
    end
    table.insert(per_thread, row)
  end
  local out = {
    duration_us = summary.duration,
    requests = summary.requests,
    bytes = summary.bytes,
    socket_errors = {
      connect = summary.errors.connect, read = summary.errors.read,
      write = summary.errors.write, timeout = summary.errors.timeout,
      status = summary.errors.status,
    },
    latency_us = {
      min = latency.min, max = latency.max, mean = latency.mean, stdev = latency.stdev,
      p50 = latency:percentile(50), p90 = latency:percentile(90),
      p95 = latency:percentile(95), p99 = latency:percentile(99),
      p999 = latency:percentile(99.9),
    },
    threads = per_thread,
  }
  io.write("BENCH_JSON " .. encode(out) .. "\n")
end

return M
