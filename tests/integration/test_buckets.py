"""Cost buckets in Redis (one Lua round trip), in memory, and with Redis unreachable: the
same rules (stacklo/domain/budget.py) wherever the levels live."""

from __future__ import annotations

import socket
import uuid

import pytest

from stacklo.data.buckets import MemoryBuckets, RedisBuckets, SharedBuckets
from stacklo.domain.budget import Bucket, Buckets

REDIS = "redis://127.0.0.1:6379/9"
# Slow enough that the few milliseconds between calls refill nothing visible.
BUCKET = Bucket("test", capacity=10, rate=0.001)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stores() -> dict[str, Buckets]:
    return {
        "redis": SharedBuckets(REDIS),
        "redis unreachable": SharedBuckets(f"redis://127.0.0.1:{_closed_port()}/0"),
        "memory": SharedBuckets(None),
        "redis only": RedisBuckets(REDIS),
        "memory only": MemoryBuckets(),
    }


@pytest.mark.parametrize("where", list(stores()))
async def test_take_refuse_and_give_back(where: str) -> None:
    store = stores()[where]
    key = uuid.uuid4().hex
    first = await store.take(BUCKET, key, 4)
    assert first.allowed and first.available == pytest.approx(6, abs=0.01)
    second = await store.take(BUCKET, key, 6)
    assert second.allowed and second.available == pytest.approx(0, abs=0.01)
    refused = await store.take(BUCKET, key, 3)
    assert not refused.allowed
    assert refused.available == pytest.approx(0, abs=0.01)  # a refusal takes nothing
    assert refused.retry_after == pytest.approx(3 / BUCKET.rate, rel=0.01)
    back = await store.take(BUCKET, key, -5)  # what an operation did not use
    assert back.allowed and back.available == pytest.approx(5, abs=0.01)
    full = await store.take(BUCKET, key, -50)  # never past the capacity
    assert full.available == pytest.approx(10, abs=0.01)
    assert full.status() == {"maximumAvailable": 10, "currentlyAvailable": 10, "restoreRate": 0.001}


async def test_instances_share_a_bucket_through_redis() -> None:
    one, two = SharedBuckets(REDIS), SharedBuckets(REDIS)
    key = uuid.uuid4().hex
    assert (await one.take(BUCKET, key, 7)).allowed
    assert not (await two.take(BUCKET, key, 7)).allowed
    assert (await two.take(BUCKET, key, 3)).allowed


async def test_buckets_refill_at_their_rate() -> None:
    fast = Bucket("fast", capacity=5, rate=1000.0)
    for store in (SharedBuckets(REDIS), SharedBuckets(None)):
        key = uuid.uuid4().hex
        assert (await store.take(fast, key, 5)).allowed
        # A thousand points a second: a millisecond or two later it holds some again, and
        # never more than its capacity.
        later = await store.take(fast, key, 0)
        assert 0 < later.available <= 5
