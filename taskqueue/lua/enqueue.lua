--[[ enqueue: create one or more jobs; queue each now, or schedule it for later.
KEYS[1] stats       HASH  counters per queue and task (`<queue>@<task>`); `<stats>:<minute>` derived, same hash tag
KEYS[2] queues      SET   every queue name ever used
KEYS[3..] five per job, in order: job HASH, ready LIST, scheduled ZSET, wake LIST, idempotency STRING
ARGV[1] n           number of jobs in this call
ARGV[2] idem_ttl_ms how long an idempotency key keeps pointing at its first job
ARGV[3..] twelve per job, in order: id, task, queue, payload, max_retries, timeout_ms, delay_ms,
        at_ms (absolute, 0 = none), has_key (1 = use the idempotency key), dead_letter (1/0), ttl_ms,
        expires_ms (0 = never; else the job is discarded as `expired` if no worker started it
        within that many ms: stored as the absolute `expires_ms` field)
Returns: flat array, two per job: job id (the existing one for a duplicate key), 1 if it already
        existed else 0.
]]
--@include now_ms
--@include tally
--@include wake
--@include new_job
local now = now_ms()
local n = tonumber(ARGV[1])
local idem_ttl = tonumber(ARGV[2])
local out = {}
local woken = {}   -- wake key -> tokens to push
local queues = {}  -- queue names seen
for i = 0, n - 1 do
  local k = 2 + i * 5
  local a = 2 + i * 12
  local job_key, ready, sched, wake_key, idem_key = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], KEYS[k + 4], KEYS[k + 5]
  local id, queue = ARGV[a + 1], ARGV[a + 3]
  local existing = false
  if ARGV[a + 9] == '1' then
    local prev = redis.call('GET', idem_key)
    if prev then
      out[#out + 1] = prev
      out[#out + 1] = 1
      existing = true
      -- Renew the key's own expiry: a write, so that a WAIT sent behind this call (an
      -- acknowledged enqueue) covers the first job's write too. WAIT counts replicas against
      -- its connection's last write; a call that wrote nothing would leave that at an older
      -- write, or at none on a fresh connection, and WAIT would say "replicated" at once.
      redis.call('PEXPIRE', idem_key, math.max(redis.call('PTTL', idem_key), 1))
    else
      redis.call('SET', idem_key, id, 'PX', idem_ttl)
    end
  end
  if not existing then
    local delay, at = tonumber(ARGV[a + 7]), tonumber(ARGV[a + 8])
    local due = now
    if at > 0 then due = at elseif delay > 0 then due = now + delay end
    new_job(job_key, ready, sched, now, due, id, ARGV[a + 2], queue, ARGV[a + 4], ARGV[a + 5],
      ARGV[a + 6], ARGV[a + 10], ARGV[a + 11])
    if ARGV[a + 9] == '1' then redis.call('HSET', job_key, 'key', idem_key) end
    local expires = tonumber(ARGV[a + 12])
    if expires > 0 then redis.call('HSET', job_key, 'expires_ms', now + expires) end
    woken[wake_key] = (woken[wake_key] or 0) + 1
    queues[queue] = true
    tally(queue .. '@' .. ARGV[a + 2], 'enqueued', 1)
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end
for wake_key, tokens in pairs(woken) do wake(wake_key, tokens) end
for queue in pairs(queues) do redis.call('SADD', KEYS[2], queue) end
flush_tally(KEYS[1], now)
return out
