-- Shared by the benchmark scripts: read "product_id location_id" pairs, and the JSON reporter.
local M = {}

function M.pairs_from(path)
  local list = {}
  for line in io.lines(path) do
    local p, l = line:match("(%S+)%s+(%S+)")
    list[#list + 1] = {p, l}
  end
  return list
end

-- wrk.format replaces wrk.headers (the -H ones, Authorization included) when given headers.
function M.json_headers()
  local h = {}
  for k, v in pairs(wrk.headers) do h[k] = v end
  h["Content-Type"] = "application/json"
  return h
end

function M.report(summary, latency)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.status + summary.errors.timeout
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "rps": %.1f, "p50_us": %d, "p90_us": %d, "p99_us": %d, "errors": %d, "non2xx": %d}\n',
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), errors,
    summary.errors.status))
end

return M
