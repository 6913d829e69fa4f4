--[[ release: give leased jobs back to the head of their queue. Graceful (stop, drain): no retry
is spent and the attempt is not counted. Stalled (the worker died; its master saw it): the stall
count grows, and past max_stalls the job goes to the dead letter as "worker lost".
KEYS[1] dead        ZSET  dead letter
KEYS[2] stats       HASH  per-queue counters; `<stats>:<minute>` derived, same hash tag
KEYS[3..] four per job: job HASH, active ZSET, ready LIST, wake LIST (of the job's queue)
ARGV[1] stalled     '1' if the worker died, '0' for a graceful give-back
ARGV[2] max_stalls  stalls allowed before the dead letter
ARGV[3] reason      error recorded when a stalled job goes to the dead letter
ARGV[4] dead_max    most entries kept in the dead letter
ARGV[5] dead_age_ms oldest entry kept in the dead letter
ARGV[6] base        key prefix with hash tag (for the derived keys of the stall include)
ARGV[7..] two per job, same order: job id, lease token
Returns: the number of jobs released (those whose token still matched).
]]
--@include now_ms
--@include num
--@include count
--@include finish
--@include wake
--@include to_dead
--@include unhold
--@include stall
local now = now_ms()
local released = 0
local n = (#KEYS - 2) / 4
-- Walk backwards so that LPUSH keeps the jobs in their original order at the head of the queue.
for i = n - 1, 0, -1 do
  local job_key, active, ready, wake_key = KEYS[3 + i * 4], KEYS[4 + i * 4], KEYS[5 + i * 4], KEYS[6 + i * 4]
  local id, token = ARGV[7 + i * 2], ARGV[8 + i * 2]
  local f = redis.call('HMGET', job_key, 'token', 'attempts', 'queue', 'cancel', 'ttl_ms')
  if f[1] == token and token ~= '' then
    released = released + 1
    if ARGV[1] == '1' then
      stall(ARGV[6], KEYS[1], KEYS[2], active, ready, wake_key, id, now, tonumber(ARGV[2]), ARGV[3],
        tonumber(ARGV[4]), tonumber(ARGV[5]))
    else
      redis.call('ZREM', active, id)
      unhold(job_key, id)
      if f[4] == '1' then
        finish(job_key, ARGV[6] .. 'done:' .. id, 'cancelled', now, num(f[5], 0))
        count(KEYS[2], f[3], 'cancelled', 1, now)
      else
        redis.call('HSET', job_key, 'state', 'queued', 'token', '', 'attempts',
          math.max(num(f[2], 1) - 1, 0))
        redis.call('LPUSH', ready, id)
        wake(wake_key, 1)
        count(KEYS[2], f[3], 'released', 1, now)
      end
    end
  end
end
return released
