-- JobStore.fail. ARGV: prefix, key, reason, transient (0/1). Any active state -> failed.
local p, key = ARGV[1], ARGV[2]
local ik = p .. ':item:' .. key
local st = redis.call('HMGET', ik, 's', 'j')
if (not st[1]) or st[1] == 'done' or st[1] == 'failed' then return 0 end
redis.call('HSET', ik, 's', 'failed', 'why', ARGV[3])
if ARGV[4] == '1' then redis.call('HSET', ik, 'ft', 1) end
redis.call('ZREM', p .. ':creating', key)
redis.call('ZREM', p .. ':inflight', key)
redis.call('DEL', ik .. ':w')
redis.call('HINCRBY', p .. ':job:' .. st[2], 'failed', 1)
redis.call('SADD', p .. ':job:' .. st[2] .. ':failed', key)
return 1
