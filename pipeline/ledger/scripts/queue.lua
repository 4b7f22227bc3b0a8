-- Helper, prepended to the scripts that say `-- uses: queue`.
-- queue(p, ik, job, rec): the item (hash ``ik``) waits again, owned by ``job``; ``rec`` joins the
-- waiting list. Every per-attempt field of an item is cleared in this one place whenever an item
-- is queued again (submit, ``--force``, ``--retry-failed``, ``retry``): task id, create mark,
-- reason, failure kind, expected and written segments, submit time, polls, create attempts and
-- redrive rounds.
local function queue(p, ik, job, rec)
  redis.call('HDEL', ik, 'tl', 'ca', 'why', 'ft', 'exp', 'w', 'sub', 'polls', 'att', 'rd')
  redis.call('DEL', ik .. ':w')
  redis.call('HSET', ik, 's', 'waiting', 'j', job)
  redis.call('RPUSH', p .. ':wait', rec)
end
