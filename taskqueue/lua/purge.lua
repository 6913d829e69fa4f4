--[[ purge: cancel up to `limit` waiting jobs of a queue (ready first, then scheduled). Active jobs
are left alone. Call again while it returns `limit`.
KEYS[1] ready       LIST
KEYS[2] scheduled   ZSET
KEYS[3] stats       HASH  per-queue counters; `<stats>:<minute>` derived, same hash tag
ARGV[1] base        key prefix with hash tag; `<base>job:<id>` and `<base>done:<id>` are derived
ARGV[2] limit       most jobs purged in this call
ARGV[3] queue       queue name (for the counters)
Returns: the number of jobs purged.
]]
--@include now_ms
--@include num
--@include count
--@include finish
local now = now_ms()
local base, limit = ARGV[1], tonumber(ARGV[2])
local ids = redis.call('LPOP', KEYS[1], limit) or {}
if #ids < limit then
  local more = redis.call('ZRANGE', KEYS[2], 0, limit - #ids - 1)
  for _, id in ipairs(more) do
    redis.call('ZREM', KEYS[2], id)
    ids[#ids + 1] = id
  end
end
for _, id in ipairs(ids) do
  local job_key = base .. 'job:' .. id
  local ttl = num(redis.call('HGET', job_key, 'ttl_ms'), 0)
  redis.call('HSET', job_key, 'error', 'purged')
  finish(job_key, base .. 'done:' .. id, 'cancelled', now, ttl)
end
if #ids > 0 then count(KEYS[3], ARGV[3], 'purged', #ids, now) end
return #ids
