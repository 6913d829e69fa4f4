-- count(stats_key, queue, counter, n, now): bump a per-queue counter in the totals hash and in the
-- per-minute hash `<stats_key>:<minute>` (same hash tag, derived here; expires after two hours).
local function count(stats_key, queue, counter, n, now)
  local field = queue .. ':' .. counter
  redis.call('HINCRBY', stats_key, field, n)
  local minute_key = stats_key .. ':' .. math.floor(now / 60000)
  -- Only a new hash needs its expiry (see tally: a HINCRBY into a new hash returns n).
  if redis.call('HINCRBY', minute_key, field, n) == n then
    redis.call('PEXPIRE', minute_key, 7200000)
  end
end

-- observe(stats_key, queue, name, ms, now): add one sample to the log-linear histogram
-- `<queue>:<name>_ms:<bucket>` of the current minute (see hist_bucket).
--@include hist_bucket
local function observe(stats_key, queue, name, ms, now)
  local minute_key = stats_key .. ':' .. math.floor(now / 60000)
  redis.call('HINCRBY', minute_key, queue .. ':' .. name .. '_ms:' .. hist_bucket(ms), 1)
end
