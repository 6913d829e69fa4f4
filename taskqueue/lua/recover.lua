--[[ recover: jobs whose lease expired (their worker vanished) go back to their queue with a stall
count; past max_stalls they go to the dead letter as "worker lost". Any process may run it.
KEYS[1] dead        ZSET  dead letter
KEYS[2] stats       HASH  per-queue counters; `<stats>:<minute>` derived, same hash tag
KEYS[3..] three per queue: active ZSET, ready LIST, wake LIST
ARGV[1] base        key prefix with hash tag; job records `<base>job:<id>` are derived
ARGV[2] limit       most expired leases handled per queue in this call
ARGV[3] max_stalls  stalls allowed before the dead letter
ARGV[4] dead_max    most entries kept in the dead letter
ARGV[5] dead_age_ms oldest entry kept in the dead letter
Returns: {requeued, dead, cancelled}: counts of recovered jobs by outcome.
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
local tally = {queued = 0, dead = 0, cancelled = 0, gone = 0}
for i = 0, (#KEYS - 2) / 3 - 1 do
  local active, ready, wake_key = KEYS[3 + i * 3], KEYS[4 + i * 3], KEYS[5 + i * 3]
  local expired = redis.call('ZRANGEBYSCORE', active, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
  for _, id in ipairs(expired) do
    local outcome = stall(ARGV[1], KEYS[1], KEYS[2], active, ready, wake_key, id, now,
      tonumber(ARGV[3]), 'lease expired', tonumber(ARGV[4]), tonumber(ARGV[5]))
    tally[outcome] = tally[outcome] + 1
  end
end
return {tally.queued, tally.dead, tally.cancelled}
