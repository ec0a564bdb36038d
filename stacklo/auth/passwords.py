"""Argon2id password hashes, computed off the event loop (each costs tens of milliseconds and
``argon2_memory_kib`` of memory).

At most ``concurrency`` hashes run at once, so memory stays flat (concurrency x memory cost)
however many sign-ins arrive together; up to ``queue`` more wait their turn, and past that the
request is refused with RATE_LIMITED (retry in a second) rather than queued without end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import anyio
import anyio.to_thread
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from prometheus_client import Gauge

from stacklo.domain.errors import RateLimited

HASHES_INSIDE = Gauge(
    "stacklo_password_hashes_inside", "Password hashes running or waiting for a turn."
)

T = TypeVar("T")


class Argon2Hasher:
    def __init__(
        self,
        time_cost: int,
        memory_kib: int,
        parallelism: int,
        *,
        concurrency: int = 2,
        queue: int = 32,
    ):
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._turns = anyio.CapacityLimiter(concurrency)
        self._queue = queue
        self._inside = 0

    async def hash(self, password: str) -> str:
        return await self._run(lambda: self._hasher.hash(password))

    async def verify(self, password_hash: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self._hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

        return await self._run(check)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    async def _run(self, work: Callable[[], T]) -> T:
        # Hashing or waiting for a turn: at most concurrency + queue at any time.
        if self._inside >= self._turns.total_tokens + self._queue:
            raise RateLimited("The server is busy checking passwords; try again.", retry_after=1)
        self._inside += 1
        HASHES_INSIDE.inc()
        try:
            async with self._turns:
                # Not abandoned on cancel: the turn is given back when the hash is done.
                return await anyio.to_thread.run_sync(work)
        finally:
            HASHES_INSIDE.dec()
            self._inside -= 1
