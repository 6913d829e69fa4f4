-- wake(wake_key, n): push up to n wake tokens (one LPUSH) for idle workers blocked on this list,
-- and keep at most 128 there: past 128, trim back to the newest 64, so that enqueues into a queue
-- that nobody drains pay an LTRIM once per 64 pushes, not on each. Spare tokens cost nothing:
-- the first worker to find the queue empty deletes them all (fetch).
local function wake(wake_key, n)
  if n > 128 then n = 64 end
  if n < 1 then return end
  local tokens = {}
  for i = 1, n do tokens[i] = '1' end
  if redis.call('LPUSH', wake_key, unpack(tokens)) > 128 then
    redis.call('LTRIM', wake_key, 0, 63)
  end
end
