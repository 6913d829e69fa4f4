--[[ schedule_fire: claim one slot of a schedule and enqueue its job, atomically, on Redis time.
The step applies only if the schedule's stored next slot still equals `expect` (so of several
masters that planned the same slot, exactly one fires it) and that slot is not in the future.
KEYS[1] schedule    HASH  the schedule's definition and state
KEYS[2] due         ZSET  name -> next slot (ms) of every schedule that is not paused
KEYS[3] stats       HASH  per-queue counters; `<stats>:<minute>` derived, same hash tag
KEYS[4] queues      SET   every queue name used
KEYS[5] job         HASH  the new job's record
KEYS[6] ready       LIST  the ready list of the schedule's queue
KEYS[7] wake        LIST  the wake list of the schedule's queue
KEYS[8] idem        STRING the job's idempotency key: schedule name plus slot
ARGV[1] name        schedule name
ARGV[2] digest      definition digest the caller planned with (keys 6 and 7 come from it)
ARGV[3] expect      the stored next slot this step consumes (ms)
ARGV[4] fire        slot of the job to enqueue (ms), or -1 to skip (misfire policy skip)
ARGV[5] missed      missed slots this step stands for (0 = an on-time slot)
ARGV[6] next        the next slot after this step (ms)
ARGV[7] id          id of the new job
ARGV[8] idem_ttl_ms how long the idempotency key lives
Returns: {status, now_ms, job id or '', earliest next slot of all schedules or -1}; status is
        fired, skipped, taken (another master consumed the slot), early, paused, gone (the
        schedule was removed) or stale (its definition changed: plan again).
]]
--@include now_ms
--@include tally
--@include wake
--@include new_job
local now = now_ms()
local h = KEYS[1]
local function earliest()
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  if first[2] then return tonumber(first[2]) end
  return -1
end
local f = redis.call('HMGET', h, 'digest', 'paused', 'next_ms', 'task', 'queue', 'payload',
  'max_retries', 'timeout_ms', 'dead_letter', 'ttl_ms')
if not f[1] then return {'gone', now, '', earliest()} end
if f[1] ~= ARGV[2] then return {'stale', now, '', earliest()} end
if f[2] == '1' then return {'paused', now, '', earliest()} end
local expect = tonumber(ARGV[3])
if tonumber(f[3]) ~= expect then return {'taken', now, '', earliest()} end
if expect > now then return {'early', now, '', earliest()} end
local fire, missed, id = tonumber(ARGV[4]), tonumber(ARGV[5]), ''
if fire >= 0 and redis.call('SET', KEYS[8], ARGV[7], 'NX', 'PX', ARGV[8]) then
  id = ARGV[7]
  local queue = f[5]
  new_job(KEYS[5], KEYS[6], nil, now, now, id, f[4], queue, f[6], f[7], f[8], f[9], f[10])
  redis.call('HSET', KEYS[5], 'key', KEYS[8], 'schedule', ARGV[1], 'slot_ms', fire,
    'missed', missed)
  wake(KEYS[7], 1)
  redis.call('SADD', KEYS[4], queue)
  tally(queue, 'enqueued', 1)
  flush_tally(KEYS[3], now)
  redis.call('HSET', h, 'last_slot_ms', fire, 'last_fired_ms', now, 'last_job', id,
    'last_missed', missed)
elseif fire < 0 then
  redis.call('HINCRBY', h, 'skipped', missed)
  redis.call('HSET', h, 'last_skipped_ms', now)
end
redis.call('HSET', h, 'next_ms', ARGV[6])
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
local status = 'fired'
if fire < 0 then status = 'skipped' end
return {status, now, id, earliest()}
