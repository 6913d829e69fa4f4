-- tally(queue, counter, n) and sample(queue, name, ms) accumulate counters and log-linear
-- histogram samples (field `<queue>:<name>_ms:<bucket>`, see hist_bucket) during one script
-- call; flush_tally(stats_key, now) writes them with one HINCRBY per distinct field, to the
-- totals hash and to `<stats_key>:<minute>` (derived, same hash tag, expires after two hours). The hot scripts (enqueue, fetch, ack, fail) use these instead of
-- count/observe, so a batch of n jobs costs a few counter commands, not a few per job. The minute
-- hash gets its PEXPIRE only when it was just created: a HINCRBY into a new hash returns exactly
-- its increment, so one that returned more proves the hash existed (and has its expiry). A new
-- field in an old hash also returns its increment; that costs one PEXPIRE too many, no harm.
--@include hist_bucket
local tally_totals, tally_minute = {}, {}
local function tally(queue, counter, n)
  local f = queue .. ':' .. counter
  tally_totals[f] = (tally_totals[f] or 0) + n
end
local function sample(queue, name, ms)
  local f = queue .. ':' .. name .. '_ms:' .. hist_bucket(ms)
  tally_minute[f] = (tally_minute[f] or 0) + 1
end
local function flush_tally(stats_key, now)
  local minute_key = stats_key .. ':' .. math.floor(now / 60000)
  local fresh = false
  for f, n in pairs(tally_totals) do
    redis.call('HINCRBY', stats_key, f, n)
    if redis.call('HINCRBY', minute_key, f, n) == n then fresh = true end
  end
  for f, n in pairs(tally_minute) do
    if redis.call('HINCRBY', minute_key, f, n) == n then fresh = true end
  end
  if fresh then redis.call('PEXPIRE', minute_key, 7200000) end
end
