//! The Lua scripts of the Redis queue. Each runs atomically on the server,
//! and touches only keys of one hash tag, so it runs unchanged on Redis
//! Cluster.
//!
//! Layout (`{p}` is the configured prefix, the hash tag):
//! - `{p}:due:0`, `{p}:due:1`, `{p}:due:2`: due entries by priority rank
//!   (high, normal, low), sorted sets of email ids scored by due time (ms);
//! - `{p}:taken`: entries taken by a worker, scored by the time they come
//!   back if nobody acknowledges them (the visibility timeout);
//! - `{p}:taken:meta`: for each taken id, `rank:due_ms`, to put it back;
//! - `{p}:epoch`: set once the queue has been rebuilt from the store; its
//!   absence means the queue lost its entries.

/// KEYS: due sets (3), taken, taken meta. ARGV: now ms, max, visibility ms.
/// Returns flat triples `id, rank, due_ms`.
pub const TAKE: &str = r#"
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[2])
local back_at = now + tonumber(ARGV[3])
local expired = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, 1000)
for _, id in ipairs(expired) do
  local meta = redis.call('HGET', KEYS[5], id)
  if meta then
    local sep = string.find(meta, ':', 1, true)
    local rank = tonumber(string.sub(meta, 1, sep - 1))
    redis.call('ZADD', KEYS[rank + 1], 'NX', string.sub(meta, sep + 1), id)
  end
  redis.call('ZREM', KEYS[4], id)
  redis.call('HDEL', KEYS[5], id)
end
local out = {}
local taken = 0
for rank = 0, 2 do
  local left = max - taken
  if left <= 0 then break end
  local due = redis.call('ZRANGEBYSCORE', KEYS[rank + 1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, left)
  if #due > 0 then
    local ids, scored, metas = {}, {}, {}
    for i = 1, #due, 2 do
      local id, score = due[i], due[i + 1]
      ids[#ids + 1] = id
      scored[#scored + 1] = back_at
      scored[#scored + 1] = id
      metas[#metas + 1] = id
      metas[#metas + 1] = rank .. ':' .. score
      out[#out + 1] = id
      out[#out + 1] = tostring(rank)
      out[#out + 1] = score
    end
    redis.call('ZREM', KEYS[rank + 1], unpack(ids))
    redis.call('ZADD', KEYS[4], unpack(scored))
    redis.call('HSET', KEYS[5], unpack(metas))
    taken = taken + #ids
  end
end
return out
"#;

/// KEYS: due sets (3). ARGV: wake horizon ms, wake channel, then triples
/// `id, rank, due_ms`. Wakes idle workers when something is due before
/// the horizon (now, and a little: an early wake-up only costs a look).
pub const ENQUEUE: &str = r#"
local now = tonumber(ARGV[1])
local by_rank = {{}, {}, {}}
local wake = false
for i = 3, #ARGV, 3 do
  local rank = tonumber(ARGV[i + 1])
  local due = ARGV[i + 2]
  local entries = by_rank[rank + 1]
  entries[#entries + 1] = due
  entries[#entries + 1] = ARGV[i]
  if tonumber(due) <= now then wake = true end
end
for rank = 0, 2 do
  local entries = by_rank[rank + 1]
  for i = 1, #entries, 1000 do
    redis.call('ZADD', KEYS[rank + 1], unpack(entries, i, math.min(i + 999, #entries)))
  end
end
if wake then redis.call('PUBLISH', ARGV[2], '1') end
return 1
"#;

/// KEYS: taken, taken meta. ARGV: ids.
pub const ACK: &str = r#"
redis.call('ZREM', KEYS[1], unpack(ARGV))
redis.call('HDEL', KEYS[2], unpack(ARGV))
return 1
"#;
