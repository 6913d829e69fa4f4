--[[ release_worker: give back every job a dead worker process still held, including jobs it
leased but never reported to its master. Each goes through the stall path (stall count + 1,
dead letter past max_stalls), or the graceful path when the worker exited cleanly.
KEYS[1] dead        ZSET  dead letter
KEYS[2] stats       HASH  per-queue counters; `<stats>:<minute>` derived, same hash tag
KEYS[3] held        SET   `<base>held:<worker>`: ids the worker leased and has not finished
ARGV[1] stalled     '1' if the worker died, '0' for a clean exit
ARGV[2] max_stalls  stalls allowed before the dead letter
ARGV[3] reason      error recorded when a stalled job goes to the dead letter
ARGV[4] dead_max    most entries kept in the dead letter
ARGV[5] dead_age_ms oldest entry kept in the dead letter
ARGV[6] base        key prefix with hash tag; `<base>job:<id>`, `<base>a:<queue>`,
        `<base>q:<queue>` and `<base>w:<queue>` are derived from each job's record
ARGV[7] limit       most jobs handled in this call (call again while it returns `limit`)
Returns: the number of jobs taken from the held set.
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
local base = ARGV[6]
local ids = redis.call('SPOP', KEYS[3], tonumber(ARGV[7]))
for _, id in ipairs(ids) do
  local job_key = base .. 'job:' .. id
  local f = redis.call('HMGET', job_key, 'state', 'held', 'queue', 'attempts', 'cancel', 'ttl_ms')
  -- Only a job still active under this worker's lease (not re-leased elsewhere meanwhile).
  if f[1] == 'active' and f[2] == KEYS[3] then
    local q = f[3]
    if ARGV[1] == '1' then
      stall(base, KEYS[1], KEYS[2], base .. 'a:' .. q, base .. 'q:' .. q, base .. 'w:' .. q, id, now,
        tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5]))
    elseif f[5] == '1' then
      -- A cancel asked while it ran is honoured on a clean exit too: it never runs again.
      redis.call('ZREM', base .. 'a:' .. q, id)
      redis.call('HDEL', job_key, 'held')
      finish(job_key, base .. 'done:' .. id, 'cancelled', now, num(f[6], 0))
      count(KEYS[2], q, 'cancelled', 1, now)
    else
      redis.call('ZREM', base .. 'a:' .. q, id)
      redis.call('HDEL', job_key, 'held')
      redis.call('HSET', job_key, 'state', 'queued', 'token', '', 'attempts',
        math.max(num(f[4], 1) - 1, 0))
      redis.call('LPUSH', base .. 'q:' .. q, id)
      wake(base .. 'w:' .. q, 1)
      count(KEYS[2], q, 'released', 1, now)
    end
  end
end
return #ids
