-- uses: done
-- JobStore.record_written. ARGV: prefix, then (item_key, pk) pairs. Idempotent: a pk already
-- counted moves nothing (a done item has no hash left, so a replay finds nothing to move).
-- Returns how many items it finished; a finished item becomes a compact done record.
local p = ARGV[1]
local finished = 0
for i = 2, #ARGV, 2 do
  local key, pk = ARGV[i], ARGV[i + 1]
  local ik = p .. ':item:' .. key
  local st = redis.call('HMGET', ik, 's', 'j', 'exp', 'cat', 'sj')
  if st[1] == 'writing' and redis.call('SADD', ik .. ':w', pk) == 1 then
    local w = redis.call('HINCRBY', ik, 'w', 1)
    redis.call('HINCRBY', p .. ':job:' .. st[2], 'segments', 1)
    if w >= tonumber(st[3]) then
      done_put(p, key, st[2], st[3], st[4], st[5])
      redis.call('HINCRBY', p .. ':job:' .. st[2], 'done', 1)
      finished = finished + 1
    end
  end
end
return finished
