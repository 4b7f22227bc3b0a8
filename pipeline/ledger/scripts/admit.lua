-- uses: split, pack
-- JobStore.admit. ARGV: prefix, n, lease_until. Moves up to n waiting records to creating;
-- returns their keys. Each admitted key joins its job's index (``{prefix}:job:{job}:keys``, a
-- string of 16-byte binary item keys appended in admission order, read by verify and re-embeds):
-- written here rather than at submit, so a waiting item costs no index bytes. Item keys are 32 hex.
local p, n, lease = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local out = {}
if n <= 0 then return out end
local recs = redis.call('LPOP', p .. ':wait', n)
if not recs then return out end
for _, rec in ipairs(recs) do
  local f = split(rec)
  local ik = p .. ':item:' .. f[1]
  local st = redis.call('HMGET', ik, 's', 'j')
  if st[1] == 'waiting' then
    redis.call('HSET', ik, 's', 'creating', 'cat', f[2], 'url', f[3], 'title', f[4], 'meta', f[5])
    redis.call('ZADD', p .. ':creating', lease, f[1])
    redis.call('APPEND', p .. ':job:' .. st[2] .. ':keys', pack(f[1]))
    out[#out + 1] = f[1]
  end
end
return out
