-- S6t: two tenants. Organization B reads its products' stock (the -H Authorization token, B's);
-- every Nth request organization A adjusts its own stock (+1) with A's token: B's cached reads
-- must stay hits while A writes.
-- wrk ... -s tenants.lua URL -- <B pairs file> <path prefix> <N> <A pairs file> <A token file>
package.path = package.path .. ";" .. debug.getinfo(1).source:match("@?(.*/)") .. "?.lua"
local common = require("common")
local reads, writes, prefix, every, writer
local n = 0

function init(args)
  reads = common.pairs_from(args[1])
  prefix = args[2]
  every = tonumber(args[3] or "10")
  writes = common.pairs_from(args[4])
  local f = io.open(args[5])
  writer = "Bearer " .. f:read("*l")
  f:close()
end

function request()
  n = n + 1
  if n % every == 0 then
    local pick = writes[math.random(#writes)]
    local headers = common.json_headers()
    headers["Authorization"] = writer
    local body = string.format(
      '{"product_id":"%s","location_id":"%s","quantity_delta":1,"reason":"bench"}', pick[1], pick[2])
    return wrk.format("POST", prefix .. "/rpc/adjust_stock", headers, body)
  end
  local pick = reads[math.random(#reads)]
  return wrk.format("GET", prefix .. "/stock_levels?select=on_hand,reserved&product_id=eq."
    .. pick[1] .. "&location_id=eq." .. pick[2])
end

done = function(summary, latency, requests) common.report(summary, latency) end
