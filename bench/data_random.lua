-- SPDX-License-Identifier: Apache-2.0
-- wrk script for bench/data.sh: each request reads or writes a key drawn at random from a
-- numbered key set.
--
--   wrk -t1 -c32 -d10s -s bench/data_random.lua URL -- path=P count=N [key=value ...]
--
-- path=P     requests go to P<i>, i uniform in 0 .. N-1 (P ends with the key prefix)
-- count=N    the size of the key set (default 1000)
-- method=M   GET (default) or PUT
-- query=Q    appended after the key, e.g. ?ttl=300 (default none)
-- bytes=B    PUT body size in bytes (default 100): {"n":<i>,"pad":"xxx..."}, sent as
--            application/json
-- seed=S     random seed (default: the time and the thread)

local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

local opt = { path = "/v1/collections/bench/docs/d", count = "1000", method = "GET", query = "",
              bytes = "100" }
local count, bytes
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if not k then error("data_random.lua: arguments are key=value, not " .. a) end
    opt[k] = v
  end
  count = tonumber(opt.count)
  bytes = tonumber(opt.bytes)
  math.randomseed(tonumber(opt.seed or (os.time() * 100 + tid)))
end

function request()
  local i = math.random(0, count - 1)
  local path = opt.path .. i .. opt.query
  if opt.method ~= "PUT" then return wrk.format(opt.method, path) end
  local head = '{"n":' .. i .. ',"pad":"'
  local body = head .. string.rep("x", math.max(0, bytes - #head - 2)) .. '"}'
  return wrk.format("PUT", path, headers, body)
end
