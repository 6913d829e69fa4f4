--[[ fetch: promote due scheduled jobs, then lease up to n ready jobs from the first non-paused
queues in priority order.
KEYS[1] paused      SET   names of paused queues
KEYS[2] stats       HASH  counters per queue and task (`<queue>@<task>`); `<stats>:<minute>` derived, same hash tag
KEYS[3] tombs       HASH  queue -> tombstones in its ready list (ids of cancelled jobs, left there by
        cancel); decreased as they are popped and dropped
KEYS[4..] four per queue, in priority order: ready LIST, scheduled ZSET, active ZSET (lease
        deadlines), wake LIST
ARGV[1] n           most jobs to lease (the caller's free slots)
ARGV[2] lease_ms    lease length; the holder extends it while the job runs
ARGV[3] token       lease token of this batch (fencing: ack, fail, extend and release check it)
ARGV[4] worker      worker id, recorded on the job; its leased ids are kept in the set
        `<base>held:<worker>` (derived, same hash tag) so that its master can release them all
        at once if the worker dies, even before it reported them
ARGV[5] base        key prefix with hash tag, e.g. `tq:{default}:`; job records `<base>job:<id>`
        are derived from popped ids (same hash tag), and so is the dead letter `<base>dead`,
        where a job whose record is corrupt goes (validated before any write to it)
ARGV[6] promote     most scheduled jobs to promote per queue in this call
ARGV[7] skip_max    most popped ids not leased in this call (tombstones: cancelled, or their record
        gone; expired; corrupt). Past it the fetch ends short, leaving a wake token, so one call
        stays bounded behind a long run of cancelled jobs
ARGV[8] halt        '1' when the caller sent this call right behind its blocking wait (BLPOP) on one
        connection, so that Redis runs it the moment the wait ends. The wait also watches
        `<base>halt:<worker>` (derived, same hash tag), which the worker pushes two items to
        when it stops or quiets: the wait pops one, this call finds the other, drops the list
        and leases nothing. '' : no such check
ARGV[9..] one per queue: the queue name, same order as KEYS
Returns: {now_ms, next_due_ms, then ten per leased job: id, task, queue, payload, attempts,
        failures, max_retries, timeout_ms, wait_ms, stalls}. A tombstone is dropped unrun. A job past its `expires_ms` is not
        leased: it ends `expired` (counted as such; result waiters woken). A job with stalls > 0 (a suspect:
        its worker died while it ran) is always the last of its batch; the caller runs it alone. next_due_ms is the earliest scheduled job
        of these queues when fewer jobs than asked were leased (the caller may wait idle next), else -1
        (also when none is scheduled). A queue left non-empty keeps one wake token.
]]
--@include now_ms
--@include finish
--@include num
--@include tally
--@include wake
--@include tombs
--@include call_many
-- The first field of a record (from HMGET task, payload, attempts, failures, max_retries,
-- timeout_ms, ..., state) that makes it unrunnable, or nil. A record that does not exist at all
-- (all nil: expired or deleted) is not corrupt: it is skipped.
local function corrupt_field(f)
  if not f[9] and not f[1] then return nil end
  if not f[1] then return "'task' is missing" end
  if not f[2] then return "'payload' is missing" end
  local names = {'attempts', 'failures', 'max_retries', 'timeout_ms'}
  for i = 3, 6 do
    if not tonumber(f[i]) then
      return "'" .. names[i - 2] .. "' is " .. (f[i] and ("'" .. string.sub(f[i], 1, 40) .. "'") or 'missing')
    end
  end
  return nil
end

local now = now_ms()
local want = tonumber(ARGV[1])
local deadline = now + tonumber(ARGV[2])
local token, worker, base = ARGV[3], ARGV[4], ARGV[5]
local promote_limit = tonumber(ARGV[6])
local held_key = base .. 'held:' .. worker
local skip_max = tonumber(ARGV[7])
local skipped = 0
if ARGV[8] == '1' then
  local halt_key = base .. 'halt:' .. worker
  if redis.call('LLEN', halt_key) > 0 then
    redis.call('DEL', halt_key)
    return {now, -1}
  end
end
local nq = (#KEYS - 3) / 4
local out = {now, -1}
local got = 0
local next_due = -1

for i = 0, nq - 1 do
  local ready, sched = KEYS[4 + i * 4], KEYS[5 + i * 4]
  local due = redis.call('ZRANGEBYSCORE', sched, '-inf', now, 'LIMIT', 0, promote_limit)
  for _, id in ipairs(due) do
    redis.call('ZREM', sched, id)
    redis.call('RPUSH', ready, id)
    redis.call('HSET', base .. 'job:' .. id, 'state', 'queued')
  end
end

for i = 0, nq - 1 do
  if got >= want or skipped >= skip_max then break end
  local queue = ARGV[9 + i]
  if redis.call('SISMEMBER', KEYS[1], queue) == 0 then
    local ready, active, wake_key = KEYS[4 + i * 4], KEYS[6 + i * 4], KEYS[7 + i * 4]
    -- Pop until the batch is full, the list is empty, or skip_max ids were not leased.
    local emptied, popped, tombs = false, 0, 0
    local leases, held = {}, {}  -- this queue's leased ids: one ZADD and one SADD for them all
    while got < want and skipped < skip_max and not emptied do
      local ask = want - got
      local ids = redis.call('LPOP', ready, ask)
      if not ids or #ids < ask then emptied = true end
      for k, id in ipairs(ids or {}) do
        popped = popped + 1
        local job_key = base .. 'job:' .. id
        local f = redis.call('HMGET', job_key, 'task', 'payload', 'attempts', 'failures',
          'max_retries', 'timeout_ms', 'enqueued_ms', 'due_ms', 'state', 'stalls', 'expires_ms',
          'ttl_ms')
        local bad = corrupt_field(f)
        if f[9] == 'cancelled' or (not f[1] and not f[9]) then
          -- A tombstone: cancelled while it waited (or its record is gone). Dropped unrun.
          tombs = tombs + 1
          skipped = skipped + 1
        elseif bad then
          -- Validated before this job's first write: it goes to the dead letter with the reason,
          -- and the jobs around it are untouched.
          redis.call('HSET', job_key, 'state', 'dead', 'finished_ms', now, 'token', '',
            'error', 'CorruptRecord: job record field ' .. bad .. ': the job cannot run')
          redis.call('ZADD', base .. 'dead', now, id)
          tally(queue, 'dead', 1)
          skipped = skipped + 1
        elseif f[11] and now >= num(f[11], now + 1) then
          finish(job_key, base .. 'done:' .. id, 'expired', now, num(f[12], 0))
          tally(queue .. '@' .. f[1], 'expired', 1)
          skipped = skipped + 1
        else
          local attempts = tonumber(f[3]) + 1
          redis.call('HSET', job_key, 'state', 'active', 'token', token, 'worker', worker,
            'started_ms', now, 'attempts', attempts, 'held', held_key)
          held[#held + 1] = id
          leases[#leases + 1] = deadline
          leases[#leases + 1] = id
          local ready_since = math.max(num(f[7], now), num(f[8], 0))
          local n = #out
          out[n + 1] = id
          out[n + 2] = f[1]
          out[n + 3] = queue
          out[n + 4] = f[2]
          out[n + 5] = attempts
          out[n + 6] = tonumber(f[4])
          out[n + 7] = tonumber(f[5])
          out[n + 8] = tonumber(f[6])
          out[n + 9] = now - ready_since
          out[n + 10] = num(f[10], 0)
          local owner = queue .. '@' .. f[1]
          sample(owner, 'wait', now - ready_since)
          tally(owner, 'started', 1)
          got = got + 1
          if out[n + 10] > 0 then
            -- A suspect (its worker died while it ran) ends the batch: the ids popped after it
            -- go back to the head in order, and this caller fetches nothing more this time.
            for j = #ids, k + 1, -1 do redis.call('LPUSH', ready, ids[j]) end
            emptied = false
            got = want
            break
          end
        end
      end
    end
    call_many('ZADD', active, leases)
    call_many('SADD', held_key, held)
    local empty = emptied or redis.call('LLEN', ready) == 0
    if popped > 0 then drop_tombs(KEYS[3], queue, tombs, empty) end
    -- An emptied queue: its wake tokens are stale. Otherwise (a full batch, or a fetch cut short
    -- by skip_max) jobs may be left: make sure one token is there, so an idle worker comes.
    if empty then
      redis.call('DEL', wake_key)
    elseif redis.call('LLEN', wake_key) == 0 then
      wake(wake_key, 1)
    end
  end
end

-- Only a caller that got fewer than it asked goes idle, and needs to know when to look again.
if got < want then
  for i = 0, nq - 1 do
    local first = redis.call('ZRANGE', KEYS[5 + i * 4], 0, 0, 'WITHSCORES')
    if first[2] then
      local d = tonumber(first[2])
      if next_due < 0 or d < next_due then next_due = d end
    end
  end
  out[2] = next_due
end
flush_tally(KEYS[2], now)
return out
