-- SPDX-License-Identifier: Apache-2.0
-- wrk script for bench/data.sh: one pass over numbered keys (load or warm a key set), or
-- PUTs of new documents until told to stop, with an exact count of what was answered.
-- Run it with -t1 (one thread).
--
--   wrk -t1 -c32 -d900s -s bench/data_load.lua URL -- path=P done=DIR [count=N] [key=value ...]
--
-- path=P     each request goes to P<i> (P ends with the key prefix: /v1/collections/c/docs/d)
-- query=Q    appended after the key, e.g. ?ttl=3600 (default none)
-- method=M   PUT (default) or GET
-- count=N    the keys are P0 .. P<N-1>, each requested once, in order
-- count=0    (default) no end: PUT P0, P1, ... until the file DIR/stop exists (looked for
--            every 64 requests); then no new PUT is sent
-- body=KIND  pad (default): {"n":<i>,"pad":"xxx..."}
--            kv: {"k":<i % mod>,"k_copy":<i % mod>,"pad":"xxx..."} (bench/data.sh's queries)
-- mod=M      the modulus of body=kv (default 100)
-- bytes=B    the body size in bytes (default 100)
-- done=DIR   once every request it sent is answered, the thread writes DIR/done-<thread>
--            with "<2xx> <other>" and stops its event loop. wrk itself runs until -d
--            expires or it gets SIGINT: bench/data.sh sends that once the file is there.
--
-- After its last request each connection sends only DELETE /healthz, which shoal answers
-- 405 and which is not counted: a real request never gets 405.

local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

local opt = { path = "/v1/collections/bench/docs/d", query = "", method = "PUT", count = "0",
              body = "pad", mod = "100", bytes = "100" }
local count, mod, bytes, stop_file
local sent, ok, failed = 0, 0, 0
local limit = nil -- requests to wait for: count, or what was sent when the stop file appeared
local finished = false
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  for _, a in ipairs(args) do
    local k, v = a:match("^([%w_]+)=(.*)$")
    if not k then error("data_load.lua: arguments are key=value, not " .. a) end
    opt[k] = v
  end
  if not opt.done then error("data_load.lua: done=DIR is required") end
  count = tonumber(opt.count)
  mod = tonumber(opt.mod)
  bytes = tonumber(opt.bytes)
  if count > 0 then limit = count end
  stop_file = opt.done .. "/stop"
end

local function body_of(i)
  local head
  if opt.body == "kv" then
    local k = i % mod
    head = '{"k":' .. k .. ',"k_copy":' .. k .. ',"pad":"'
  else
    head = '{"n":' .. i .. ',"pad":"'
  end
  return head .. string.rep("x", math.max(0, bytes - #head - 2)) .. '"}'
end

function response(status)
  if status == 405 then
    -- a filler's answer
  elseif status >= 200 and status < 300 then
    ok = ok + 1
  else
    failed = failed + 1
  end
  if limit and not finished and ok + failed >= limit then
    finished = true
    local f = assert(io.open(opt.done .. "/done-" .. tid, "w"))
    f:write(ok, " ", failed, "\n")
    f:close()
    wrk.thread:stop()
  end
end

local filler = wrk.format("DELETE", "/healthz")

-- wrk calls request() of its first thread once before connecting, only to check the
-- request (script_verify_request in wrk.c); that request is never sent.
local verified = false

function request()
  if tid == 1 and not verified then
    verified = true
    return filler
  end
  if limit and sent >= limit then return filler end
  if not limit and sent % 64 == 0 then
    local f = io.open(stop_file, "r")
    if f then
      f:close()
      limit = sent
      return filler
    end
  end
  local i = sent
  sent = sent + 1
  local path = opt.path .. i .. opt.query
  if opt.method == "GET" then return wrk.format("GET", path) end
  return wrk.format(opt.method, path, headers, body_of(i))
end
