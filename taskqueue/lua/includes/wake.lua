-- wake(wake_key, n): push up to n wake tokens (one LPUSH) for idle workers blocked on this list,
-- and keep at most 64 there (LTRIM only when the push went past 64).
local function wake(wake_key, n)
  if n > 64 then n = 64 end
  if n < 1 then return end
  local tokens = {}
  for i = 1, n do tokens[i] = '1' end
  if redis.call('LPUSH', wake_key, unpack(tokens)) > 64 then
    redis.call('LTRIM', wake_key, 0, 63)
  end
end
