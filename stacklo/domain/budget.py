"""Cost budgets: a token bucket per client, the rules of which live here and nowhere else.

A bucket holds at most ``capacity`` points and refills at ``rate`` points a second (Shopify's
leaky bucket seen from the other side). An operation takes its requested cost before it runs;
when the bucket holds less, nothing is taken and the operation is refused with the seconds
until it would hold enough. After the operation ran, what it did not use (requested minus
actual) is given back, never past ``capacity``.

Invariant: ``0 <= available <= capacity`` at every instant, and a refused take changes
nothing but the refill already earned. The Redis script in ``stacklo/data/buckets.py`` is
this function in Lua (one round trip, Redis's own clock); the memory store calls it directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Bucket:
    """A policy: its name (for the RateLimit header fields), size and refill rate."""

    policy: str
    capacity: int
    rate: float  # points a second

    @property
    def window(self) -> int:
        """Seconds an empty bucket takes to fill."""
        return max(1, math.ceil(self.capacity / self.rate))


@dataclass(frozen=True, slots=True)
class Level:
    available: float
    at: float  # seconds, on the store's clock


def take(bucket: Bucket, level: Level | None, now: float, cost: float) -> tuple[bool, Level]:
    """Take ``cost`` points at ``now`` (a negative cost gives points back). A new bucket is
    full. Returns whether it was taken and the level after."""
    if level is None:
        available = float(bucket.capacity)
    else:
        earned = max(0.0, now - level.at) * bucket.rate
        available = min(float(bucket.capacity), level.available + earned)
    if cost <= available:
        return True, Level(min(float(bucket.capacity), available - cost), now)
    return False, Level(available, now)


@dataclass(frozen=True, slots=True)
class Taken:
    """A take's outcome and the bucket's state after it."""

    bucket: Bucket
    allowed: bool
    cost: float
    available: float

    @property
    def retry_after(self) -> int:
        """Whole seconds until the bucket holds ``cost`` (0 when it does now)."""
        missing = self.cost - self.available
        return 0 if missing <= 0 else max(1, math.ceil(missing / self.bucket.rate))

    @property
    def full_in(self) -> int:
        """Whole seconds until the bucket is full again."""
        return math.ceil(max(0.0, self.bucket.capacity - self.available) / self.bucket.rate)

    def status(self) -> dict[str, float | int]:
        """Shopify's ``throttleStatus``."""
        return {
            "maximumAvailable": self.bucket.capacity,
            "currentlyAvailable": math.floor(self.available),
            "restoreRate": self.bucket.rate,
        }

    def headers(self) -> tuple[str, str]:
        """This bucket's ``RateLimit-Policy`` and ``RateLimit`` list members
        (draft-ietf-httpapi-ratelimit-headers): quota and window, remaining and reset."""
        name = self.bucket.policy
        return (
            f'"{name}";q={self.bucket.capacity};w={self.bucket.window}',
            f'"{name}";r={math.floor(self.available)};t={self.full_in}',
        )


class Buckets(Protocol):
    """Where bucket levels live (Redis, shared by every instance; or this process)."""

    async def take(self, bucket: Bucket, key: str, cost: float) -> Taken: ...


@dataclass(frozen=True, slots=True)
class Budget:
    """The buckets every operation draws from, and where their levels live."""

    store: Buckets
    cost: Bucket  # each caller's query cost points
    money: Bucket  # each caller's money-moving mutations, one point each
