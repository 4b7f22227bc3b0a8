-- JobStore.record_written. ARGV: prefix, then (item_key, pk) pairs. Idempotent: a pk already
-- counted moves nothing. Returns how many items it finished.
local p = ARGV[1]
local finished = 0
for i = 2, #ARGV, 2 do
  local key, pk = ARGV[i], ARGV[i + 1]
  local ik = p .. ':item:' .. key
  local st = redis.call('HMGET', ik, 's', 'j', 'exp')
  if st[1] == 'writing' and redis.call('SADD', ik .. ':w', pk) == 1 then
    local w = redis.call('HINCRBY', ik, 'w', 1)
    redis.call('HINCRBY', p .. ':job:' .. st[2], 'segments', 1)
    if w >= tonumber(st[3]) then
      redis.call('HSET', ik, 's', 'done')
      redis.call('DEL', ik .. ':w')
      redis.call('HINCRBY', p .. ':job:' .. st[2], 'done', 1)
      finished = finished + 1
    end
  end
end
return finished
