-- JobStore.get_job: a job's items in flight for another job that have settled.
-- ARGV: prefix, job, n. Looks at up to n of the job's items in flight for another job; those that
-- settled leave the set (a failed one is listed with the job's failures and counted as
-- ``failed_elsewhere``). Returns how many are still open.
local p, job = ARGV[1], ARGV[2]
local jk = p .. ':job:' .. job
local bk = jk .. ':busy'
for _, key in ipairs(redis.call('SRANDMEMBER', bk, tonumber(ARGV[3]))) do
  local s = redis.call('HGET', p .. ':item:' .. key, 's')
  if s == 'failed' then
    redis.call('HINCRBY', jk, 'failed_elsewhere', 1)
    redis.call('SADD', jk .. ':failed', key)
  end
  if (not s) or s == 'done' or s == 'failed' then redis.call('SREM', bk, key) end
end
return redis.call('SCARD', bk)
