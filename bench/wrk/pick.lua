-- Requests a path template with {id} replaced by a random line of a file, plus the report.
-- wrk ... -s pick.lua URL -- <ids file> <path template>
package.path = package.path .. ";" .. debug.getinfo(1).source:match("@?(.*/)") .. "?.lua"
local common = require("common")
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

done = function(summary, latency, requests) common.report(summary, latency) end
