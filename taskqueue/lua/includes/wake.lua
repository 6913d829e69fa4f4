-- wake(wake_key, n): push up to n wake tokens for idle workers blocked on this list (capped at 64).
local function wake(wake_key, n)
  if n > 64 then n = 64 end
  for _ = 1, n do redis.call('LPUSH', wake_key, '1') end
  redis.call('LTRIM', wake_key, 0, 63)
end
