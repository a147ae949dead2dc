-- SPDX-License-Identifier: Apache-2.0
-- wrk script: every request PUTs a new JSON document (Content-Type: application/json).
--
--   wrk -t1 -c32 -d10s -s bench/put_new.lua http://127.0.0.1:PORT -- PREFIX [BYTES] [LIMIT DONE_DIR]
--
-- PREFIX  makes ids unique across runs: ids are PREFIX-<thread>-<counter>.
-- BYTES   body size in bytes (default 100); the body is {"id":"<id>","pad":"xxx..."}.
-- LIMIT   with DONE_DIR: each thread PUTs exactly LIMIT documents, then sends only cheap
--         GET /healthz requests and stops its event loop once all its PUTs are answered,
--         writing DONE_DIR/done-<thread> with "<created> <failed>". wrk itself runs until
--         its -d expires or it gets SIGINT (bench/run.sh sends it once every thread is done).

local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

local prefix, bytes, limit, done_dir = "run", 100, nil, nil
local counter = 0
local created, failed = 0, 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  prefix = args[1] or prefix
  bytes = tonumber(args[2] or bytes)
  limit = args[3] and tonumber(args[3]) or nil
  done_dir = args[4]
  if limit then
    response = function(status)
      if status == 201 then
        created = created + 1
      elseif status ~= 200 then
        failed = failed + 1 -- a PUT that did not create (GET /healthz answers 200)
      end
      if created + failed >= limit then
        local f = io.open(done_dir .. "/done-" .. tid, "w")
        f:write(created, " ", failed, "\n")
        f:close()
        wrk.thread:stop()
      end
    end
  end
end

-- wrk calls request() of its first thread once before connecting, only to check the
-- request (script_verify_request in wrk.c); that request is never sent, so it must not
-- use up an id or count against LIMIT.
local verified = false

function request()
  if tid == 1 and not verified then
    verified = true
    return wrk.format("GET", "/healthz")
  end
  counter = counter + 1
  if limit and counter > limit then
    return wrk.format("GET", "/healthz")
  end
  local id = prefix .. "-" .. tid .. "-" .. counter
  -- {"id":"<id>","pad":"<pad>"} is 18 bytes plus the id and the padding.
  local pad = string.rep("x", math.max(0, bytes - 18 - #id))
  local body = '{"id":"' .. id .. '","pad":"' .. pad .. '"}'
  return wrk.format("PUT", "/v1/collections/bench/docs/" .. id, headers, body)
end
