--[[ fail: record a failed attempt; retry it later with backoff, or finish it (dead letter,
failed or cancelled).
KEYS[1] job         HASH
KEYS[2] active      ZSET  leases of the job's queue
KEYS[3] scheduled   ZSET  the job's queue's scheduled set (retries wait here)
KEYS[4] dead        ZSET  dead letter, id -> time of death
KEYS[5] stats       HASH  counters per queue and task (`<queue>@<task>`); `<stats>:<minute>` derived, same hash tag
KEYS[6] done        LIST  result waiters of this job
KEYS[7] wake        LIST  wake tokens of the job's queue
ARGV[1] token       lease token
ARGV[2] error       one-line error ("TypeError: ...")
ARGV[3] traceback   formatted traceback (may be empty)
ARGV[4] retry_ms    backoff before the next attempt (jitter computed by the caller)
ARGV[5] mode        'retry' (retry while attempts last) or 'dead' (no retry: bad payload, Reject)
ARGV[6] dead_max    most entries kept in the dead letter
ARGV[7] dead_age_ms oldest entry kept in the dead letter
ARGV[8] base        key prefix with hash tag; trimmed dead jobs `<base>job:<id>` are derived
Returns: the job's new state: 'scheduled' | 'dead' | 'failed' | 'cancelled', or 'lost' when the
        token does not match (nothing changed). A call sent again with the token that already
        settled the job (its first reply was lost) changes nothing and returns what the first
        made of it: the job's terminal state, or 'scheduled' if it was retried (it may have run
        again since).
]]
--@include now_ms
--@include num
--@include tally
--@include finish
--@include unhold
--@include wake
--@include to_dead
local now = now_ms()
local job_key = KEYS[1]
local f = redis.call('HMGET', job_key, 'token', 'queue', 'failures', 'max_retries', 'dead_letter',
  'cancel', 'attempts', 'history', 'ttl_ms', 'id', 'started_ms', 'task', 'settled', 'state')
if ARGV[1] ~= '' and f[1] ~= ARGV[1] and f[13] == ARGV[1] then  -- a repeat: its reply was lost
  if f[14] == 'dead' or f[14] == 'failed' or f[14] == 'cancelled' then return f[14] end
  return 'scheduled'
end
if f[1] ~= ARGV[1] or ARGV[1] == '' then return 'lost' end
local queue, id = f[2], f[10]
local owner = queue .. '@' .. (f[12] or '')  -- counted per queue and task
redis.call('ZREM', KEYS[2], id)
unhold(job_key, id)
local failures = num(f[3], 0) + 1
local history = {}
if f[8] then
  local ok, old = pcall(cjson.decode, f[8])
  if ok and type(old) == 'table' then history = old end
end
history[#history + 1] = {attempt = num(f[7], 0), error = string.sub(ARGV[2], 1, 500), at_ms = now}
while #history > 10 do table.remove(history, 1) end
redis.call('HSET', job_key, 'failures', failures, 'error', ARGV[2], 'traceback', ARGV[3],
  'history', cjson.encode(history), 'token', '', 'settled', ARGV[1])
tally(owner, 'failed', 1)
sample(owner, 'run', now - num(f[11], now))

-- The job's end: counted with 'failed' in one flush of the counters.
local state
if f[6] == '1' then
  finish(job_key, KEYS[6], 'cancelled', now, num(f[9], 0))
  state = 'cancelled'
elseif ARGV[5] == 'retry' and failures <= num(f[4], 0) then
  local due = now + tonumber(ARGV[4])
  redis.call('HSET', job_key, 'state', 'scheduled', 'due_ms', due)
  redis.call('ZADD', KEYS[3], due, id)
  wake(KEYS[7], 1)
  state = 'scheduled'
elseif f[5] == '1' then
  to_dead(ARGV[8], KEYS[4], id, now, tonumber(ARGV[6]), tonumber(ARGV[7]))
  state = 'dead'
else
  finish(job_key, KEYS[6], 'failed', now, num(f[9], 0))
  state = 'failed'
end
local counted = ({scheduled = 'retried', cancelled = 'cancelled', dead = 'dead'})[state]
if counted then tally(owner, counted, 1) end
flush_tally(KEYS[5], now)
return state
