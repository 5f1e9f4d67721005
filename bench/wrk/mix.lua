-- S6: 90% reads of a product's stock, 10% stock adjustments (+1) on the same products
-- (every Nth request a write: N = 10 unless given; 1 = writes only, S6w).
-- wrk ... -s mix.lua URL -- <pairs file> <path prefix> [N]
package.path = package.path .. ";" .. debug.getinfo(1).source:match("@?(.*/)") .. "?.lua"
local common = require("common")
local pairs_list, prefix, every
local n = 0

function init(args)
  pairs_list = common.pairs_from(args[1])
  prefix = args[2]
  every = tonumber(args[3] or "10")
end

function request()
  n = n + 1
  local pick = pairs_list[math.random(#pairs_list)]
  if n % every == 0 then
    local body = string.format(
      '{"product_id":"%s","location_id":"%s","quantity_delta":1,"reason":"bench"}', pick[1], pick[2])
    return wrk.format("POST", prefix .. "/rpc/adjust_stock",
      common.json_headers(), body)
  end
  return wrk.format("GET", prefix .. "/stock_levels?select=on_hand,reserved&product_id=eq."
    .. pick[1] .. "&location_id=eq." .. pick[2])
end

done = function(summary, latency, requests) common.report(summary, latency) end
