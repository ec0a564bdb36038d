"""Subscription streams: bounded buffers and the replay/live seam, on a real broadcaster."""

import asyncio
import json
import uuid

import pytest
from broadcaster import Broadcast

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.events import OutboxEvent
from stacklo.realtime.streams import SlowConsumer, Streams


def event(position: int, user: uuid.UUID) -> str:
    return json.dumps(
        OutboxEvent(position, position, "wallet", "w", (user,), {"n": position}).to_wire()
    )


async def test_a_consumer_that_falls_behind_is_cut_off(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with Broadcast("memory://") as broadcast:
        streams = Streams(broadcast, uow_factory, buffer=3, per_user=5)
        user = uuid.uuid4()
        stream = streams.events("c", lambda e: True).__aiter__()
        first = asyncio.ensure_future(stream.__anext__())
        await asyncio.sleep(0.05)  # subscribed
        await broadcast.publish("c", event(1, user))
        assert (await first).position == 1
        for position in range(2, 12):  # nobody reads: the buffer of 3 overflows
            await broadcast.publish("c", event(position, user))
        await asyncio.sleep(0.05)
        with pytest.raises(SlowConsumer):
            await stream.__anext__()


async def test_replay_then_live_without_duplicates(uow_factory: SqlUnitOfWorkFactory) -> None:
    user = uuid.uuid4()
    stored = [OutboxEvent(p, p, "wallet", "w", (user,), {"n": p}) for p in (5, 6, 7)]

    async def replay(after: int) -> list[OutboxEvent]:
        return [e for e in stored if e.position > after]

    async with Broadcast("memory://") as broadcast:
        streams = Streams(broadcast, uow_factory, buffer=10, per_user=5)
        stream = streams.events("c", lambda e: True, after=4, replay=replay).__aiter__()
        got = [(await stream.__anext__()).position for _ in range(3)]
        # 7 was published live too while replay ran (the seam): it must not come twice.
        for position in (7, 8):
            await broadcast.publish("c", event(position, user))
        got.append((await asyncio.wait_for(stream.__anext__(), 2)).position)
    assert got == [5, 6, 7, 8]


async def test_subscription_slots_are_capped_per_user(uow_factory: SqlUnitOfWorkFactory) -> None:
    from stacklo.domain.errors import RateLimited

    async with Broadcast("memory://") as broadcast:
        streams = Streams(broadcast, uow_factory, buffer=1, per_user=2)
        user = uuid.uuid4()
        async with streams.slot(user), streams.slot(user):
            with pytest.raises(RateLimited):
                async with streams.slot(user):
                    pass
        async with streams.slot(user):  # released again
            pass


async def test_subscribers_of_a_channel_share_one_broadcast_subscription(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    user = uuid.uuid4()
    async with Broadcast("memory://") as broadcast:
        streams = Streams(broadcast, uow_factory, buffer=2, per_user=5)
        fast = streams.events("c", lambda e: True).__aiter__()
        slow = streams.events("c", lambda e: True).__aiter__()
        first = [asyncio.ensure_future(s.__anext__()) for s in (fast, slow)]
        await asyncio.sleep(0.05)
        assert len(broadcast._subscribers["c"]) == 1  # one queue feeds both streams
        await broadcast.publish("c", event(1, user))
        assert [(await f).position for f in first] == [1, 1]
        # The slow one stops reading and overflows; the fast one is not held back.
        for position in range(2, 8):
            await broadcast.publish("c", event(position, user))
            assert (await asyncio.wait_for(fast.__anext__(), 2)).position == position
        with pytest.raises(SlowConsumer):
            await slow.__anext__()
        await fast.aclose()  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        assert "c" not in broadcast._subscribers  # the last one out unsubscribes
