-- wrk reporter: one JSON line with throughput, latency percentiles (microseconds) and errors.
package.path = package.path .. ";" .. debug.getinfo(1).source:match("@?(.*/)") .. "?.lua"
local common = require("common")

done = function(summary, latency, requests) common.report(summary, latency) end
