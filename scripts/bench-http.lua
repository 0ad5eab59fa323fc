-- wrk script for scripts/bench-http: every request creates one managed user with
-- POST /openidm/managed/user?_action=create and a userName unique across threads and requests
-- (thread number + per-thread counter). Counts 201 and other answers per thread and prints
-- machine-readable totals (key value lines) when the run is done.
--
-- Environment: IDSYNC_BENCH_TOKEN (the admin token), IDSYNC_BENCH_PREFIX (makes userNames
-- unique across runs against the same repository; default "bench").

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("tid", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  n = 0
  created = 0
  other = 0
  prefix = os.getenv("IDSYNC_BENCH_PREFIX") or "bench"
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. (os.getenv("IDSYNC_BENCH_TOKEN") or ""),
  }
end

function request()
  n = n + 1
  local user = string.format("%s-%d-%d", prefix, tid, n)
  local body = string.format(
    '{"userName":"%s","givenName":"Bench","sn":"User %d","mail":"%s@example.com"}',
    user, n, user)
  return wrk.format("POST", "/openidm/managed/user?_action=create", headers, body)
end

function response(status, headers, body)
  if status == 201 then
    created = created + 1
  else
    other = other + 1
    if other <= 3 then
      io.stderr:write(string.format("thread %d: HTTP %d %s\n", tid, status, body))
    end
  end
end

function done(summary, latency, requests)
  local c, o = 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created")
    o = o + t:get("other")
  end
  local secs = summary.duration / 1e6
  io.write(string.format("answers %d\n", summary.requests))
  io.write(string.format("created_201 %d\n", c))
  io.write(string.format("non_201 %d\n", o))
  io.write(string.format("socket_errors %d\n",
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
  io.write(string.format("duration_s %.2f\n", secs))
  io.write(string.format("req_per_s %.1f\n", summary.requests / secs))
  io.write(string.format("p50_ms %.2f\n", latency:percentile(50) / 1000))
  io.write(string.format("p99_ms %.2f\n", latency:percentile(99) / 1000))
  io.write(string.format("max_ms %.2f\n", latency.max / 1000))
end
