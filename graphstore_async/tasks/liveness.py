"""Which workers are alive: each worker process beats in Redis; /ready and /metrics count the live ones.

One sorted set, `{prefix}:workers`, scored by each worker's last beat (epoch seconds); a worker whose last beat
is older than five heartbeats is not counted (and is pruned by the next beat of any worker).
"""

from __future__ import annotations

import time
import uuid

from redis.asyncio import Redis

from graphstore_async.settings import Settings
from graphstore_async.tasks.keys import HEARTBEATS_MISSED, Keys


class Workers:
    def __init__(self, redis: Redis, settings: Settings) -> None:
        self._redis = redis
        self._key = Keys(settings.redis_prefix).workers
        self._lapse_s = settings.heartbeat_s * HEARTBEATS_MISSED
        self.id = uuid.uuid4().hex  # this process's worker, when it runs one

    async def beat(self) -> None:
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(self._key, {self.id: now})
            pipe.zremrangebyscore(self._key, "-inf", now - self._lapse_s)
            await pipe.execute()

    async def leave(self) -> None:
        await self._redis.zrem(self._key, self.id)

    async def alive_ids(self) -> set[str]:
        found = await self._redis.zrangebyscore(self._key, time.time() - self._lapse_s, "+inf")
        return {raw.decode() for raw in found}

    async def alive(self) -> int:
        """How many workers beat within the lapse."""
        return int(await self._redis.zcount(self._key, time.time() - self._lapse_s, "+inf"))
