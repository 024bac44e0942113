-- wrk script: GET /Users?filter=userName eq "userN@example.com" over users 1..USERS
-- (scripts/bench-wrk), a spread of existing users from a multiplicative hash.
local users = tonumber(os.getenv("USERS") or "1000")
local threads = 0

function setup(thread)
  thread:set("seed", threads)
  threads = threads + 1
end

function init(args)
  i = seed * 7919
end

function request()
  i = i + 1
  local n = (i * 2654435761) % users + 1
  return wrk.format("GET", wrk.path .. "?filter=userName%20eq%20%22user" .. n .. "%40example.com%22")
end

-- scripts/bench-wrk sets WRK_DIR to this folder.
dofile(os.getenv("WRK_DIR") .. "/report.lua")
