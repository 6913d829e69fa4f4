--[[ dead_retry: move jobs from the dead letter back to the tail of their queue with fresh retries.
KEYS[1] dead        ZSET  dead letter
KEYS[2] queues      SET   every queue name ever used
ARGV[1] base        key prefix with hash tag; `<base>job:<id>`, `<base>q:<queue>` (ready) and
        `<base>w:<queue>` (wake) are derived: the queue is only known from the job record
ARGV[2] limit       with no ids: most jobs moved in this call (oldest first)
ARGV[3..] job ids to retry; none means "the oldest `limit` dead jobs"
Returns: the number of jobs moved back to a queue.
]]
--@include pick_ids
--@include wake
local base = ARGV[1]
local ids = pick_ids(KEYS[1], 3, tonumber(ARGV[2]))
local moved = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    local job_key = base .. 'job:' .. id
    local queue = redis.call('HGET', job_key, 'queue')
    if queue then
      redis.call('HSET', job_key, 'state', 'queued', 'failures', 0, 'stalls', 0, 'token', '')
      redis.call('RPUSH', base .. 'q:' .. queue, id)
      wake(base .. 'w:' .. queue, 1)
      redis.call('SADD', KEYS[2], queue)
      moved = moved + 1
    end
  end
end
return moved
