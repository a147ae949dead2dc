-- SPDX-License-Identifier: Apache-2.0
-- wrk script: every request enqueues a job (POST /v1/queues/QUEUE/jobs).
--
--   wrk -t1 -c32 -d10s -s bench/enqueue.lua http://127.0.0.1:PORT -- QUEUE TYPE [BYTES] [LIMIT DONE_DIR]
--
-- BYTES  the request body size (default 100, like bench/put_new.lua's documents).
-- LIMIT  with DONE_DIR: each thread enqueues exactly LIMIT jobs, then sends only GET
--        /healthz and stops once all its enqueues are answered, writing
--        DONE_DIR/done-<thread> with "<accepted> <failed>".

local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

local queue, job_type, bytes, limit, done_dir = "bench", "noop", 100, nil, nil
local counter, accepted, failed = 0, 0, 0
local headers = { ["Content-Type"] = "application/json" }
local path

function init(args)
  queue = args[1] or queue
  job_type = args[2] or job_type
  bytes = tonumber(args[3] or bytes)
  limit = args[4] and tonumber(args[4]) or nil
  done_dir = args[5]
  path = "/v1/queues/" .. queue .. "/jobs"
  if limit then
    response = function(status)
      if status == 202 then
        accepted = accepted + 1
      elseif status ~= 200 then
        failed = failed + 1
      end
      if accepted + failed >= limit then
        local f = io.open(done_dir .. "/done-" .. tid, "w")
        f:write(accepted, " ", failed, "\n")
        f:close()
        wrk.thread:stop()
      end
    end
  end
end

local verified = false -- see bench/put_new.lua: wrk's first request() is only checked

function request()
  if tid == 1 and not verified then
    verified = true
    return wrk.format("GET", "/healthz")
  end
  counter = counter + 1
  if limit and counter > limit then
    return wrk.format("GET", "/healthz")
  end
  local n = tid .. "-" .. counter
  -- {"type":"<type>","payload":{"n":"<n>","pad":"<pad>"}} is 36 bytes plus the rest.
  local pad = string.rep("x", math.max(0, bytes - 36 - #job_type - #n))
  local body = '{"type":"' .. job_type .. '","payload":{"n":"' .. n .. '","pad":"' .. pad .. '"}}'
  return wrk.format("POST", path, headers, body)
end
