--[[ schema_check: agree on the namespace's data-format (schema) version before a process reads
or writes its jobs, so that two releases whose scripts or records differ never share a namespace.
KEYS[1] schema      HASH  `<base>schema`: version, min_compatible, by, at_ms of the newest
        release that ran here
ARGV[1] version         this release's schema version (an integer)
ARGV[2] min_compatible  the oldest schema version this release can share the namespace with
ARGV[3] by              who asks (host:pid and package version), recorded when it raises the version
Returns: {'ok', version, min_compatible} as stored afterwards, or {'refused', version,
min_compatible} as stored (nothing written) when this release is older than the stored
min_compatible, or the stored version is older than this release's min_compatible.
]]
--@include now_ms
local v, m = tonumber(ARGV[1]), tonumber(ARGV[2])
if not v or not m then
  return redis.error_reply('ERR schema_check: version and min_compatible must be integers')
end
local f = redis.call('HMGET', KEYS[1], 'version', 'min_compatible')
local sv, sm = tonumber(f[1]), tonumber(f[2])
if not sv or not sm then
  redis.call('HSET', KEYS[1], 'version', v, 'min_compatible', m, 'by', ARGV[3], 'at_ms', now_ms())
  return {'ok', v, m}
end
if v < sm or sv < m then
  return {'refused', sv, sm}
end
if v > sv then
  redis.call('HSET', KEYS[1], 'version', v, 'min_compatible', m, 'by', ARGV[3], 'at_ms', now_ms())
  return {'ok', v, m}
end
return {'ok', sv, sm}
