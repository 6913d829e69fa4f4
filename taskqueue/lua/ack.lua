--[[ ack: complete one or more leased jobs; store each result until the record expires.
KEYS[1] stats       HASH  per-queue counters; `<stats>:<minute>` derived, same hash tag
KEYS[2..] three per job: job HASH, active ZSET of its queue, done LIST (result waiters)
ARGV[1..] two per job, same order: lease token, result (MessagePack bytes)
Returns: array with one integer per job: 1 acknowledged, 0 lease lost (another worker owns the
        job now, or it was finished already: the result is discarded and counted as a duplicate).
]]
--@include now_ms
--@include count
--@include finish
--@include unhold
local now = now_ms()
local out = {}
local n = (#KEYS - 1) / 3
for i = 0, n - 1 do
  local job_key, active, done_key = KEYS[2 + i * 3], KEYS[3 + i * 3], KEYS[4 + i * 3]
  local token = ARGV[1 + i * 2]
  local f = redis.call('HMGET', job_key, 'token', 'queue', 'started_ms', 'ttl_ms', 'id')
  if f[1] ~= token or token == '' then
    out[#out + 1] = 0
    if f[2] then count(KEYS[1], f[2], 'duplicates', 1, now) end
  else
    redis.call('ZREM', active, f[5])
    unhold(job_key, f[5])
    redis.call('HSET', job_key, 'result', ARGV[2 + i * 2])
    finish(job_key, done_key, 'succeeded', now, tonumber(f[4]))
    count(KEYS[1], f[2], 'succeeded', 1, now)
    observe(KEYS[1], f[2], 'run', now - tonumber(f[3]), now)
    out[#out + 1] = 1
  end
end
return out
