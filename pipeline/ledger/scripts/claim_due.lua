-- JobStore.claim_due. KEYS: a sorted set. ARGV: now, lease_until, n. Claims due members by
-- pushing their score.
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, m in ipairs(due) do redis.call('ZADD', KEYS[1], ARGV[2], m) end
return due
