-- SPDX-License-Identifier: Apache-2.0
-- wrk script for bench/data.sh: each request is an equality query on a random value.
--
--   wrk -t1 -c32 -d10s -s bench/data_query.lua URL -- collection=C field=F values=M [key=value ...]
--
-- Each request is POST /v1/collections/C/query with
--   {"where":{"F":X},"limit":L}                     or, with scan=true,
--   {"where":{"F":X},"limit":L,"allow_scan":true}
-- where X is uniform in 0 .. M-1.
--
-- collection=C  (default docs)     field=F  (default k)     values=M  (default 100)
-- limit=L       (default 10)       scan=true|false (default false)
-- seed=S        random seed (default: the time and the thread)

local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

local opt = { collection = "docs", field = "k", values = "100", limit = "10", scan = "false" }
local values, path, tail
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if not k then error("data_query.lua: arguments are key=value, not " .. a) end
    opt[k] = v
  end
  values = tonumber(opt.values)
  path = "/v1/collections/" .. opt.collection .. "/query"
  tail = '},"limit":' .. opt.limit .. (opt.scan == "true" and ',"allow_scan":true}' or "}")
  math.randomseed(tonumber(opt.seed or (os.time() * 100 + tid)))
end

function request()
  local x = math.random(0, values - 1)
  return wrk.format("POST", path, headers, '{"where":{"' .. opt.field .. '":' .. x .. tail)
end
