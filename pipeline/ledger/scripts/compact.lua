-- uses: done
-- compact_ledger (``pipeline/ledger/compact.py``). ARGV: prefix, then item keys. Each item whose own
-- hash says done (written before done records were compact) becomes a compact done record.
-- Returns how many it moved. Idempotent.
local p = ARGV[1]
local moved = 0
for i = 2, #ARGV do
  local key = ARGV[i]
  local st = redis.call('HMGET', p .. ':item:' .. key, 's', 'j', 'exp', 'cat', 'sj')
  if st[1] == 'done' then
    done_put(p, key, st[2], st[3], st[4], st[5])
    moved = moved + 1
  end
end
return moved
