-- S7: create_order for one unit, on a random product of the list (uncontended) or the first
-- one only (hot). wrk ... -s orders.lua URL -- <pairs file> <path prefix> <hot|spread>
package.path = package.path .. ";" .. debug.getinfo(1).source:match("@?(.*/)") .. "?.lua"
local common = require("common")
local pairs_list, prefix, hot

function init(args)
  pairs_list = common.pairs_from(args[1])
  prefix = args[2]
  hot = args[3] == "hot"
end

function request()
  local pick = hot and pairs_list[1] or pairs_list[math.random(#pairs_list)]
  local body = string.format(
    '{"kind":"sales","location_id":"%s","items":[{"product_id":"%s","quantity":1}]}',
    pick[2], pick[1])
  return wrk.format("POST", prefix .. "/rpc/create_order",
    common.json_headers(), body)
end

done = function(summary, latency, requests) common.report(summary, latency) end
