-- hist_bucket(ms): log-linear histogram bucket of a duration, 8 sub-buckets per power of two
-- (relative width 1/8, so a percentile read at the bucket's middle is within 6.25 %). 0 holds
-- [0, 1) ms; for ms >= 1 with ms = m * 2^e (0.5 <= m < 1), bucket = 8e + floor(16m) - 15, so
-- [1, 1.125) is 1, [2, 2.25) is 9, [3, 3.25) is 13. taskqueue/metrics/histogram.py decodes it.
local function hist_bucket(ms)
  if ms < 1 then return 0 end
  local m, e = math.frexp(ms)
  return e * 8 + math.floor(m * 16) - 15
end
