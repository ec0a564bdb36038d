"""Token-bucket levels (``stacklo/domain/budget.py``): in Redis, shared by every instance, or
in this process. With Redis configured but unreachable, this process's memory stands in
(``stacklo/data/fallback.py``)."""

from __future__ import annotations

import time
from collections import OrderedDict

from stacklo.data.fallback import SharedOrLocal
from stacklo.domain.budget import Bucket, Level, Taken, take

# domain.budget.take in Lua, on Redis's clock, in one round trip. A refund is a negative
# cost. The key expires once the bucket would be full again (a full bucket needs no key).
TAKE = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'a', 't')
local available = capacity
if state[1] then
  available = math.min(capacity, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * rate)
end
local allowed = 0
if cost <= available then
  available = math.min(capacity, available - cost)
  allowed = 1
end
redis.call('HSET', KEYS[1], 'a', string.format('%.6f', available), 't', string.format('%.6f', now))
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - available) / rate * 1000) + 1000)
return {allowed, string.format('%.6f', available)}
"""


class MemoryBuckets:
    """This process's levels; the least recently used are forgotten past ``size`` (a
    forgotten bucket starts full again, as an expired Redis key does)."""

    def __init__(self, size: int = 100_000):
        self._size = size
        self._levels: OrderedDict[tuple[str, str], Level] = OrderedDict()

    async def take(self, bucket: Bucket, key: str, cost: float) -> Taken:
        name = (bucket.policy, key)
        allowed, level = take(bucket, self._levels.get(name), time.monotonic(), cost)
        self._levels[name] = level
        self._levels.move_to_end(name)
        while len(self._levels) > self._size:
            self._levels.popitem(last=False)
        return Taken(bucket, allowed, cost, level.available)


class RedisBuckets:
    PREFIX = "stacklo:bucket:"

    def __init__(self, url: str):
        from redis.asyncio import Redis

        self._redis = Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._take = self._redis.register_script(TAKE)

    async def take(self, bucket: Bucket, key: str, cost: float) -> Taken:
        allowed, available = await self._take(
            keys=[f"{self.PREFIX}{bucket.policy}:{key}"],
            args=[bucket.capacity, bucket.rate, cost],
        )
        return Taken(bucket, bool(int(allowed)), cost, float(available))


class SharedBuckets:
    """Redis when configured and reachable; this process's memory otherwise."""

    def __init__(self, redis_url: str | None):
        self._shared = RedisBuckets(redis_url) if redis_url else None
        self._local = MemoryBuckets()
        self._fallback = SharedOrLocal("cost_buckets")

    async def take(self, bucket: Bucket, key: str, cost: float) -> Taken:
        shared = self._shared
        if shared is None:
            return await self._local.take(bucket, key, cost)
        return await self._fallback.call(
            lambda: shared.take(bucket, key, cost), lambda: self._local.take(bucket, key, cost)
        )
