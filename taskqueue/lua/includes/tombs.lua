-- drop_tombs(tombs_key, queue, n, empty): `n` tombstones (ids of cancelled jobs, or of records that
-- expired meanwhile) were popped from `queue`'s ready list and dropped. The count per queue is
-- kept so that queue lengths can leave them out. A list found empty holds no tombstone: the count
-- goes, which also mends any drift (a record deleted by hand, an older release's fetch).
local function drop_tombs(tombs_key, queue, n, empty)
  if empty then
    redis.call('HDEL', tombs_key, queue)
  elseif n > 0 then
    local left = num(redis.call('HGET', tombs_key, queue), 0) - n
    if left > 0 then
      redis.call('HSET', tombs_key, queue, left)
    else
      redis.call('HDEL', tombs_key, queue)
    end
  end
end
