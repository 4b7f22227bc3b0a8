-- JobStore.pull_forward_polls. ARGV: prefix, now, expected_s. Pulls every in-flight check
-- forward to max(now, submitted + expected) when that is sooner than its schedule. Run when a
-- model's task time is first learned. Returns how many moved.
local p, now, expected = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local moved = 0
local later = redis.call('ZRANGEBYSCORE', p .. ':inflight', '(' .. now, '+inf', 'WITHSCORES')
for i = 1, #later, 2 do
  local key, score = later[i], tonumber(later[i + 1])
  local sub = tonumber(redis.call('HGET', p .. ':item:' .. key, 'sub'))
  if sub then
    local target = math.max(now, sub + expected)
    if target < score then
      redis.call('ZADD', p .. ':inflight', 'XX', target, key)
      moved = moved + 1
    end
  end
end
return moved
