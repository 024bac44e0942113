-- wrk script: POST /Users with a fresh user per request (scripts/bench-wrk). Thread k of
-- this wrk process creates users FROM + k*SHARE + 1 … FROM + (k+1)*SHARE (the last thread of
-- THREADS creates LAST_SHARE of them) and stops once its share has answered; requests its
-- connections still send after that ask /healthz, so no user is created twice. wrk calls
-- request() once in its first thread to check the script before sending anything; that call
-- gets a /healthz request too, so no number is spent on a request never sent.
local from = tonumber(os.getenv("FROM") or "0")
local share = tonumber(os.getenv("SHARE") or "1000")
local last_share = tonumber(os.getenv("LAST_SHARE") or tostring(share))
local nthreads = tonumber(os.getenv("THREADS") or "1")
local threads = 0

function setup(thread)
  thread:set("first", from + threads * share)
  thread:set("quota", threads == nthreads - 1 and last_share or share)
  thread:set("index", threads)
  threads = threads + 1
end

function init(args)
  n = first
  answered = 0
  checking = index == 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/scim+json"
end

function request()
  if checking or n >= first + quota then
    checking = false
    return wrk.format("GET", "/healthz", {}, nil)
  end
  n = n + 1
  local body = string.format(
    '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],'
    .. '"userName":"user%d@example.com","active":true,'
    .. '"name":{"givenName":"User","familyName":"Number %d"},'
    .. '"emails":[{"value":"user%d@example.com","type":"work","primary":true}],'
    .. '"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":'
    .. '{"department":"R&D","employeeNumber":"%d"}}', n, n, n, n)
  return wrk.format(nil, nil, nil, body)
end

function response(status, headers, body)
  answered = answered + 1
  if answered == quota then
    -- wrk sleeps its whole -d duration even when every thread has stopped; the file tells
    -- scripts/bench-wrk to end it with SIGINT.
    local f = io.open(os.getenv("DONE_DIR") .. "/done-" .. first, "w")
    f:close()
    wrk.thread:stop()
  end
end

-- scripts/bench-wrk sets WRK_DIR to this folder.
dofile(os.getenv("WRK_DIR") .. "/report.lua")
