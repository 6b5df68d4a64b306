"""The Lua scripts of the task store (tasks/records.py): each change of a task's state that must be checked and
done at once, in one round trip. Their keys and arguments are named above each; the keys are tasks/keys.py's.
"""

from __future__ import annotations

# KEYS: task, running index, heartbeat. ARGV: task id, now, score, heartbeat ttl ms. Whether the task was
# started (not when it has ended, or was cancelled, meanwhile), and its hash as it is now.
START = """
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'pending' and status ~= 'running' then return {0, redis.call('HGETALL', KEYS[1])} end
redis.call('HSET', KEYS[1], 'status', 'running', 'started', ARGV[2])
redis.call('HDEL', KEYS[1], 'committing')
redis.call('HINCRBY', KEYS[1], 'tries', 1)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[4])
return {1, redis.call('HGETALL', KEYS[1])}
"""
# KEYS: task.
COMMIT = """
if redis.call('HEXISTS', KEYS[1], 'cancel') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'committing', '1')
return 1
"""
# KEYS: task, running index, heartbeat, tombstone, delivery queue, delivery job, ...
# ARGV: task id, status, ended, result, statements, retention s, tombstone ttl s, job ttl ms,
#       then for each delivery job: its id, payload, due (ms).
# The task's end, its tombstone (naming its account, for 410) and the first jobs of its deliveries, at once: a task
# never ends without what will notify it. A job already there is left as it is (a task finished twice).
FINISH = """
redis.call('HSET', KEYS[1], 'status', ARGV[2], 'ended', ARGV[3], 'result', ARGV[4], 'statements', ARGV[5],
           'staged', '1')
redis.call('HDEL', KEYS[1], 'cancel')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('DEL', KEYS[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('SET', KEYS[4], redis.call('HGET', KEYS[1], 'account') or '', 'EX', ARGV[7])
for i = 6, #KEYS do
  local n = 9 + (i - 6) * 3
  if redis.call('SET', KEYS[i], ARGV[n + 1], 'PX', ARGV[8], 'NX') then
    redis.call('ZADD', KEYS[5], 'NX', ARGV[n + 2], ARGV[n])
  end
end
"""
# KEYS: task, running index, heartbeat, tombstone. ARGV: task id, max crashes, now, result json, retention s,
# tombstone ttl s. Checked and done at once: a task that finished, or whose worker beat again, since the reaper
# looked is left alone (0); a task whose workers died `max crashes` times while running it fails (2) instead of
# going back to pending (1): a body that crashes the engine must not crash it for ever.
LOST = """
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
if redis.call('HINCRBY', KEYS[1], 'crashes', 1) >= tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'ended', ARGV[3], 'result', ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('SET', KEYS[4], redis.call('HGET', KEYS[1], 'account'), 'EX', ARGV[6])
  return 2
end
redis.call('HSET', KEYS[1], 'status', 'pending')
return 1
"""
# KEYS: task, tombstone. ARGV: now, retention s, tombstone ttl s, result json.
CANCEL = """
local status = redis.call('HGET', KEYS[1], 'status')
if status == 'pending' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'ended', ARGV[1], 'result', ARGV[4])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  redis.call('SET', KEYS[2], redis.call('HGET', KEYS[1], 'account'), 'EX', ARGV[3])
  return 'cancelled'
end
if status == 'running' then
  if redis.call('HEXISTS', KEYS[1], 'committing') == 1 then return 'committing' end
  redis.call('HSET', KEYS[1], 'cancel', ARGV[1])
  return 'interrupting'
end
return 'finished'
"""
# KEYS: the task queue, an index (or the queue again). ARGV: the task key's prefix, how many from the index
# (newest first), or else the ids. For each task: its hash (empty for one that has expired), its delivery
# attempts and its place in the queue (false when it is not waiting).
VIEWS = """
local ids = ARGV
local first = 3
if KEYS[2] ~= KEYS[1] then ids, first = redis.call('ZREVRANGE', KEYS[2], 0, tonumber(ARGV[2]) - 1), 1 end
local found = {}
for i = first, #ids do
  local key = ARGV[1] .. ids[i]
  found[#found + 1] = {redis.call('HGETALL', key), redis.call('LRANGE', key .. ':deliveries', 0, -1),
                       redis.call('ZRANK', KEYS[1], ids[i])}
end
return found
"""
# KEYS: task, deliveries list, delivery queue, the attempt's own job, the next attempt's job (or the task again),
# claims. ARGV: attempt json, deliveries ttl s, the state field, its value ('' while the delivery goes on), its
# error field, the error ('' for none), own job id, next job id, next payload, next due ms, job ttl ms, the
# first-attempt field, the attempt's time (epoch s).
# One attempt's record, and the delivery's end or the next attempt, at once; the attempt's own job goes (an
# attempt made at once by the worker that ran the task had it as a stand-in, due if that worker died).
ATTEMPTED = """
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('HSETNX', KEYS[1], ARGV[12], ARGV[13])
redis.call('HDEL', KEYS[6], ARGV[7])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], ARGV[5], ARGV[6]) end
end
redis.call('ZREM', KEYS[3], ARGV[7])
redis.call('DEL', KEYS[4])
if KEYS[5] ~= KEYS[1] and redis.call('SET', KEYS[5], ARGV[9], 'PX', ARGV[11], 'NX') then
  redis.call('ZADD', KEYS[3], 'NX', ARGV[10], ARGV[8])
end
return redis.call('HMGET', KEYS[1], 'delivery', 'callback')
"""
