-- One endpoint of the auth service, chosen by BENCH_SCENARIO:
--   get       GET BENCH_PATH (JWKS, the bare app): one static request
--   me        GET /api/v1/auth/me, Bearer access tokens of the thread's pool, round robin
--   refresh   POST /api/v1/auth/refresh, each refresh token of the pool used once
--   logout    POST /api/v1/auth/logout, each access token of the pool used once
--   login     POST /api/v1/auth/login, seeded users round robin, correct password
--   register  POST /api/v1/auth/register, a new email each time
--   client_credentials  POST /oauth2/token, grant_type=client_credentials, HTTP Basic
--                       (BENCH_BASIC, the whole Authorization value), form-encoded
--   introspect  POST /oauth2/introspect, the pool's access tokens round robin, HTTP Basic of a
--               client with scope introspect (BENCH_BASIC), form-encoded
--   flood_unknown  POST /api/v1/auth/login, a wrong password for a new address without an
--                  account each time (BENCH_RUN_ID keeps runs apart)
--   flood_known    POST /api/v1/auth/login, a wrong password for the seeded users round robin
-- Pools are files BENCH_POOL<thread>.txt, one token a line, written by bench/run.py.
-- BENCH_RATE (req/s for all threads together) paces the requests instead of a closed loop.

package.path = os.getenv("BENCH_LUA_DIR") .. "/?.lua;" .. package.path
local report = require("report")

local scenario = os.getenv("BENCH_SCENARIO")
local agent = os.getenv("BENCH_USER_AGENT")
local json_headers = {
  ["X-Forwarded-Proto"] = "https", ["Content-Type"] = "application/json", ["User-Agent"] = agent,
}

local client_headers = {
  ["X-Forwarded-Proto"] = "https", ["User-Agent"] = agent,
  ["Content-Type"] = "application/x-www-form-urlencoded", Authorization = os.getenv("BENCH_BASIC"),
}

local function bearer(token)
  return { ["X-Forwarded-Proto"] = "https", ["User-Agent"] = agent, Authorization = "Bearer " .. token }
end

local pool = {}
local position = 0
local counter = 0

setup = report.setup

function init(args)
  local prefix = os.getenv("BENCH_POOL")
  if prefix and prefix ~= "" then
    local file = assert(io.open(prefix .. id .. ".txt", "r"))
    for line in file:lines() do
      if line ~= "" then pool[#pool + 1] = line end
    end
    file:close()
    pool_size = #pool
  end
  if scenario == "login" or scenario == "flood_known" then
    local users = tonumber(os.getenv("BENCH_USERS"))
    local threads = tonumber(os.getenv("BENCH_THREADS"))
    counter = id * math.floor(users / threads)  -- each thread starts at its own user
  end
end

-- Each token at most once: a spent refresh token would revoke its session (reuse detection) and
-- a logged-out session answers 401, so running dry stops the thread and marks the run.
local function next_single_use()
  position = position + 1
  if position > #pool then
    dry = 1
    wrk.thread:stop()
    position = #pool
  end
  used = position
  return pool[position]
end

local function next_round_robin()
  position = position % #pool + 1
  used = position
  return pool[position]
end

local builders = {}

function builders.me()
  return wrk.format("GET", "/api/v1/auth/me", bearer(next_round_robin()))
end

function builders.refresh()
  local body = '{"refresh_token":"' .. next_single_use() .. '"}'
  return wrk.format("POST", "/api/v1/auth/refresh", json_headers, body)
end

function builders.logout()
  return wrk.format("POST", "/api/v1/auth/logout", bearer(next_single_use()))
end

function builders.login()
  local users = tonumber(os.getenv("BENCH_USERS"))
  local email = "bench-user-" .. (counter % users) .. "@" .. os.getenv("BENCH_EMAIL_DOMAIN")
  counter = counter + 1
  local body = '{"email":"' .. email .. '","password":"' .. os.getenv("BENCH_PASSWORD") .. '"}'
  return wrk.format("POST", "/api/v1/auth/login", json_headers, body)
end

function builders.register()
  counter = counter + 1
  local email = "bench-reg-" .. os.getenv("BENCH_RUN_ID") .. "-" .. id .. "-" .. counter
    .. "@" .. os.getenv("BENCH_EMAIL_DOMAIN")
  local password = "bench-pass-" .. counter .. "-long-enough"
  local body = '{"email":"' .. email .. '","password":"' .. password .. '"}'
  return wrk.format("POST", "/api/v1/auth/register", json_headers, body)
end

function builders.client_credentials()
  return wrk.format("POST", "/oauth2/token", client_headers, "grant_type=client_credentials")
end

-- A JWT is base64url and dots: nothing to form-encode.
function builders.introspect()
  local body = "token=" .. next_round_robin() .. "&token_type_hint=access_token"
  return wrk.format("POST", "/oauth2/introspect", client_headers, body)
end

function builders.flood_unknown()
  counter = counter + 1
  local email = "flood-" .. os.getenv("BENCH_RUN_ID") .. "-" .. id .. "-" .. counter
    .. "@" .. os.getenv("BENCH_EMAIL_DOMAIN")
  local body = '{"email":"' .. email .. '","password":"bench-wrong-password"}'
  return wrk.format("POST", "/api/v1/auth/login", json_headers, body)
end

function builders.flood_known()
  local users = tonumber(os.getenv("BENCH_USERS"))
  local email = "bench-user-" .. (counter % users) .. "@" .. os.getenv("BENCH_EMAIL_DOMAIN")
  counter = counter + 1
  local body = '{"email":"' .. email .. '","password":"bench-wrong-password"}'
  return wrk.format("POST", "/api/v1/auth/login", json_headers, body)
end

-- Pacing (BENCH_RATE): request k of this thread is due at start + k / rate, whichever
-- connection sends it; wrk measures latency from the send, so the wait is not counted.
local rate = tonumber(os.getenv("BENCH_RATE") or "")
if rate and rate > 0 then
  local ffi = require("ffi")
  ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_pace_timespec;
  int clock_gettime(int clk_id, bench_pace_timespec *tp);
  ]]
  local timespec = ffi.new("bench_pace_timespec")
  local started, slots = nil, 0
  function delay()
    ffi.C.clock_gettime(1, timespec) -- CLOCK_MONOTONIC
    local t = tonumber(timespec.tv_sec) + tonumber(timespec.tv_nsec) * 1e-9
    if started == nil then started = t end
    slots = slots + 1
    local wait = (started + slots / (rate / tonumber(os.getenv("BENCH_THREADS"))) - t) * 1000
    if wait < 1 then return 0 end
    return math.floor(wait)
  end
end

if scenario == "get" then
  wrk.method = "GET"
  wrk.path = os.getenv("BENCH_PATH")
  wrk.headers["X-Forwarded-Proto"] = "https"
  wrk.headers["User-Agent"] = agent
else
  local build = assert(builders[scenario], "unknown BENCH_SCENARIO " .. tostring(scenario))
  request = build
end

function response(status, headers, body)
  report.count(status, body)
end

function done(summary, latency, requests)
  report.done(summary, latency, requests)
end
