-- Requests a path template with {id} replaced by a random line of a file, plus the report.
-- wrk ... -s pick.lua URL -- <ids file> <path template>
local ids = {}
local template

function init(args)
  for line in io.lines(args[1]) do ids[#ids + 1] = line end
  template = args[2]
end

function request()
  local path = template:gsub("{id}", ids[math.random(#ids)])
  return wrk.format(nil, path)
end

done = function(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "rps": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, "errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), errors,
    summary.errors.status))
end
