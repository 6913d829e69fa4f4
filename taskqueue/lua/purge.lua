--[[ purge: cancel up to `limit` waiting jobs of a queue (ready first, then scheduled). Active jobs
are left alone. Tombstones popped from the ready list (ids of jobs cancelled while they waited, or
whose record is gone) are dropped: they count toward `limit`, not as purged. Call again while it
took something.
KEYS[1] ready       LIST
KEYS[2] scheduled   ZSET
KEYS[3] stats       HASH  per-queue counters; `<stats>:<minute>` derived, same hash tag
KEYS[4] tombs       HASH  queue -> tombstones in its ready list (decreased by those dropped)
ARGV[1] base        key prefix with hash tag; `<base>job:<id>` and `<base>done:<id>` are derived
ARGV[2] limit       most ids taken from the queue in this call
ARGV[3] queue       queue name (for the counters)
Returns: {purged, taken}: jobs purged, and ids taken (purged + tombstones dropped); 0 taken: done.
]]
--@include now_ms
--@include num
--@include count
--@include finish
--@include tombs
local now = now_ms()
local base, limit = ARGV[1], tonumber(ARGV[2])
local popped = redis.call('LPOP', KEYS[1], limit) or {}
local ids, tombs = {}, 0
for _, id in ipairs(popped) do
  local state = redis.call('HGET', base .. 'job:' .. id, 'state')
  if not state or state == 'cancelled' then
    tombs = tombs + 1
  else
    ids[#ids + 1] = id
  end
end
if #popped < limit then
  local more = redis.call('ZRANGE', KEYS[2], 0, limit - #popped - 1)
  for _, id in ipairs(more) do
    redis.call('ZREM', KEYS[2], id)
    ids[#ids + 1] = id
  end
end
if #popped > 0 then
  drop_tombs(KEYS[4], ARGV[3], tombs, #popped < limit or redis.call('LLEN', KEYS[1]) == 0)
end
for _, id in ipairs(ids) do
  local job_key = base .. 'job:' .. id
  local ttl = num(redis.call('HGET', job_key, 'ttl_ms'), 0)
  redis.call('HSET', job_key, 'error', 'purged')
  finish(job_key, base .. 'done:' .. id, 'cancelled', now, ttl)
end
if #ids > 0 then count(KEYS[3], ARGV[3], 'purged', #ids, now) end
return {#ids, #ids + tombs}
