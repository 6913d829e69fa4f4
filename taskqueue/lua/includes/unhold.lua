-- unhold(job_key, id): the job leaves its worker's held set (the job's `held` field names that
-- set, `<base>held:<worker>`, same hash tag). Called whenever a job stops being active. The
-- field itself may stay: it is rewritten by the next fetch and no set holds the id meanwhile.
local function unhold(job_key, id)
  local held = redis.call('HGET', job_key, 'held')
  if held then redis.call('SREM', held, id) end
end
