-- Requests a path template with {n} replaced by a value no request repeats (the second the run
-- started, the thread, a counter; warm-up and measured runs are seconds apart): every request
-- is a cache miss. Plus the report.
-- wrk ... -s unique.lua URL -- <path template>
package.path = package.path .. ";" .. debug.getinfo(1).source:match("@?(.*/)") .. "?.lua"
local common = require("common")
local threads = 0
local template
local n = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
  thread:set("started", os.time())
end

function init(args)
  template = args[1]
end

function request()
  n = n + 1
  local path = template:gsub("{n}", string.format("%d-%d-%d", started, thread_number, n))
  return wrk.format(nil, path)
end

done = function(summary, latency, requests) common.report(summary, latency) end
