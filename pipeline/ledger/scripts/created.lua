-- JobStore.record_created. ARGV: prefix, key, task_id, now, next_poll. creating -> processing,
-- once.
local p, key = ARGV[1], ARGV[2]
local ik = p .. ':item:' .. key
if redis.call('HGET', ik, 's') ~= 'creating' then return 0 end
redis.call('HSET', ik, 's', 'processing', 'tl', ARGV[3], 'sub', ARGV[4], 'polls', 0)
redis.call('HDEL', ik, 'ca')
redis.call('ZREM', p .. ':creating', key)
redis.call('ZADD', p .. ':inflight', ARGV[5], key)
return 1
