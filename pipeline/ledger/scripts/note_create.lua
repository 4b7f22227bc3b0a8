-- JobStore.note_create_attempt. KEYS: item hash, its create lock. ARGV: token, now, lease_ms.
-- Marks a create as attempted only while the caller still holds the lock (and pushes its lease)
-- and the item is still creating.
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('HGET', KEYS[1], 's') ~= 'creating' then return 0 end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], 'ca', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'att', 1)
return 1
