-- Soak: /me and refresh mixed (BENCH_ME_PER_REFRESH /me per refresh), paced at BENCH_RATE req/s
-- in all. Each refresh spends the refresh token a previous response returned, the way a client
-- does, so the run needs no pool however long it lasts and every token is used exactly once.
-- /me uses the newest access tokens those responses carried (always within their lifetime).
-- BENCH_POOL<thread>.txt seeds each thread with "access<TAB>refresh" lines.

package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local report = require("report")
local ffi = require("ffi")

ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local timespec = ffi.new("bench_timespec")
local function now()
  ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
  return tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
end

local agent = os.getenv("BENCH_USER_AGENT")
local json_headers = {
  ["X-Forwarded-Proto"] = "https", ["Content-Type"] = "application/json", ["User-Agent"] = agent,
}
local queue, head, tail = {}, 1, 0
local recent, recent_size, recent_next = {}, 64, 1
local rate, ratio = 0, 1
local started, slots, sent = nil, 0, 0
me = 0
refreshes = 0

setup = report.setup

local function remember_access(token)
  recent[recent_next] = token
  recent_next = recent_next % recent_size + 1
end

function init(args)
  local threads = tonumber(os.getenv("BENCH_THREADS"))
  rate = tonumber(os.getenv("BENCH_RATE")) / threads
  ratio = tonumber(os.getenv("BENCH_ME_PER_REFRESH"))
  local file = assert(io.open(os.getenv("BENCH_POOL") .. id .. ".txt", "r"))
  for line in file:lines() do
    local access, refresh = string.match(line, "^(%S+)\t(%S+)$")
    if access then
      remember_access(access)
      tail = tail + 1
      queue[tail] = refresh
    end
  end
  file:close()
  pool_size = tail
end

-- Pacing: request k of this thread is due at start + k / rate, whichever connection sends it.
function delay()
  local t = now()
  if started == nil then started = t end
  slots = slots + 1
  local wait = (started + slots / rate - t) * 1000
  if wait < 1 then return 0 end
  return math.floor(wait)
end

function request()
  sent = sent + 1
  if sent % (ratio + 1) == 0 and head <= tail then
    local token = queue[head]
    queue[head] = nil
    head = head + 1
    used = used + 1
    refreshes = refreshes + 1
    return wrk.format("POST", "/api/v1/auth/refresh", json_headers,
      '{"refresh_token":"' .. token .. '"}')
  end
  me = me + 1
  local token = recent[(sent % #recent) + 1]
  return wrk.format("GET", "/api/v1/auth/me",
    { ["X-Forwarded-Proto"] = "https", ["User-Agent"] = agent, Authorization = "Bearer " .. token })
end

function response(status, headers, body)
  report.count(status, body)
  if status == 200 and body then
    local refresh = string.match(body, '"refresh_token"%s*:%s*"([^"]+)"')
    if refresh then
      tail = tail + 1
      queue[tail] = refresh
      local access = string.match(body, '"access_token"%s*:%s*"([^"]+)"')
      if access then remember_access(access) end
    end
  end
end

function done(summary, latency, requests)
  report.done(summary, latency, requests, { "me", "refreshes" })
end
