-- SPDX-License-Identifier: Apache-2.0
-- wrk script: virtual actor calls, POST /v1/actors/counter/<id>/method/<method> with an
-- empty body (= {} arguments).
--
--   wrk -t1 -c32 -d10s -s bench/actor_call.lua http://127.0.0.1:PORT -- hot ID [METHOD]
--   wrk -t1 -c32 -d900s -s bench/actor_call.lua http://127.0.0.1:PORT -- cycle PREFIX IDS THREADS [DONE_DIR]
--
-- hot    every request calls counter/ID (METHOD defaults to increment).
-- cycle  increments counter/PREFIX-<n> for n = 0 .. IDS-1, then again from 0. THREADS must
--        be wrk's -t: thread t (1-based) takes n = t-1, t-1+THREADS, ... so the threads
--        together call every id once per pass. With DONE_DIR each thread makes exactly one
--        pass over its ids, then sends only cheap GET /healthz requests and stops its
--        event loop once all its calls are answered, writing DONE_DIR/done-<thread> with
--        "<ok> <failed>" (ok: 200 with a counter value; failed: any other status).
--        wrk itself runs until its -d expires or it gets SIGINT
--        (bench/actors.sh sends it once every thread is done), as bench/put_new.lua.

local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

local mode, path = "hot", nil
local prefix, ids, threads, done_dir = "c", 100000, 1, nil
local n = nil       -- the next id number (cycle)
local sent = 0      -- calls sent (cycle with DONE_DIR)
local limit = nil   -- calls this thread makes (cycle with DONE_DIR)
local ok, failed = 0, 0

function init(args)
  mode = args[1] or mode
  if mode == "hot" then
    path = "/v1/actors/counter/" .. (args[2] or "hot") .. "/method/" .. (args[3] or "increment")
    return
  end
  if mode ~= "cycle" then
    error("actor_call.lua: the mode is hot or cycle, not " .. tostring(mode))
  end
  prefix = args[2] or prefix
  ids = tonumber(args[3] or ids)
  threads = tonumber(args[4] or threads)
  done_dir = args[5]
  n = tid - 1
  if done_dir then
    -- the ids t-1, t-1+THREADS, ... below IDS
    limit = n < ids and math.floor((ids - 1 - n) / threads) + 1 or 0
    local done = false
    response = function(status, headers, body)
      if done then
        return -- answers read in the same event-loop round as the last call
      end
      if status ~= 200 then
        failed = failed + 1
      elseif body:sub(1, 9) == '{"value":' then
        ok = ok + 1
      else
        return -- {"status":"ok"} of a GET /healthz sent after the last call
      end
      if ok + failed >= limit then
        done = true
        local f = io.open(done_dir .. "/done-" .. tid, "w")
        f:write(ok, " ", failed, "\n")
        f:close()
        wrk.thread:stop()
      end
    end
  end
end

-- wrk calls request() of its first thread once before connecting, only to check the
-- request (script_verify_request in wrk.c); that request is never sent, so it must not
-- use up an id (see bench/put_new.lua).
local verified = false

function request()
  if tid == 1 and not verified then
    verified = true
    return wrk.format("GET", "/healthz")
  end
  if mode == "hot" then
    return wrk.format("POST", path)
  end
  if limit then
    if sent >= limit then
      return wrk.format("GET", "/healthz")
    end
    sent = sent + 1
  end
  local id = prefix .. "-" .. n
  n = n + threads
  if n >= ids then
    n = tid - 1
  end
  return wrk.format("POST", "/v1/actors/counter/" .. id .. "/method/increment")
end
