-- SPDX-License-Identifier: Apache-2.0
-- wrk script: external pull workers. Each connection leases up to MAX jobs of QUEUE,
-- then completes them one by one, then leases again; connections of a thread share the
-- leased jobs. Once a lease came back empty and nothing is left to complete or
-- unanswered, the thread writes DONE_DIR/done-<thread> "<completed>
-- <failed>" and stops.
--
--   wrk -t1 -c8 -d900s -s bench/pull_worker.lua http://127.0.0.1:PORT -- QUEUE MAX DONE_DIR

local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("tid", next_thread)
end

local queue, max, done_dir
local headers = { ["Content-Type"] = "application/json" }
local pending = {}      -- {id, lease} still to complete
local working = 0       -- leases and completions sent and not yet answered
local completed, failed = 0, 0
local drained = false   -- a lease came back empty
local lease_body

function init(args)
  queue = args[1]
  max = tonumber(args[2])
  done_dir = args[3]
  lease_body = '{"max":' .. max .. ',"visibility_ms":60000}'
end

local verified = false

function request()
  if tid == 1 and not verified then
    verified = true
    return wrk.format("GET", "/healthz")
  end
  local job = table.remove(pending)
  if job then
    working = working + 1
    return wrk.format("POST", "/v1/jobs/" .. job[1] .. "/complete", headers,
                      '{"lease_id":"' .. job[2] .. '","result":null}')
  end
  if drained then
    return wrk.format("GET", "/healthz")
  end
  working = working + 1
  return wrk.format("POST", "/v1/queues/" .. queue .. "/lease", headers, lease_body)
end

function response(status, hdrs, body)
  if body == '{"status":"ok"}' then return end -- /healthz
  working = working - 1
  if body:sub(1, 8) == '{"jobs":' then
    local got = 0
    for id, lease in body:gmatch('"id":"(%x+)".-"lease_id":"(%x+)"') do
      pending[#pending + 1] = { id, lease }
      got = got + 1
    end
    if got == 0 then drained = true end
  elseif body:find('"state":"succeeded"', 1, true) then
    completed = completed + 1
  elseif status ~= 200 then
    failed = failed + 1
  end
  if drained and #pending == 0 and working == 0 then
    local f = io.open(done_dir .. "/done-" .. tid, "w")
    f:write(completed, " ", failed, "\n")
    f:close()
    wrk.thread:stop()
  end
end
