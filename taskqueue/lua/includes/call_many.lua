-- call_many(cmd, key, items): one variadic command (ZADD, ZREM, SADD, SREM ...) for all the
-- items of a list, in chunks of at most 1,000 so that unpack stays far from Lua's stack limit;
-- nothing is sent for an empty list. A batch of n jobs then costs one command, not n.
local function call_many(cmd, key, items)
  for i = 1, #items, 1000 do
    redis.call(cmd, key, unpack(items, i, math.min(i + 999, #items)))
  end
end
