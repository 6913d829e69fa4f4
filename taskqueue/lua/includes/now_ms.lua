-- now_ms(): milliseconds since the epoch, from the Redis server clock (never a host clock).
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
