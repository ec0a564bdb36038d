"""Subscription streams: bounded buffers, the replay/live seam, and a lost broadcast connection,
on the broadcast the server uses (in memory, and over the machine's Redis)."""

import asyncio
import json
import uuid

import pytest
import redis.asyncio as redis

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.errors import BroadcastUnavailable
from stacklo.domain.events import OutboxEvent
from stacklo.realtime.broadcast import BroadcastLost, make_broadcast
from stacklo.realtime.streams import SlowConsumer, Streams


def event(position: int, user: uuid.UUID) -> str:
    return json.dumps(
        OutboxEvent(position, position, "wallet", "w", (user,), {"n": position}).to_wire()
    )


async def test_a_consumer_that_falls_behind_is_cut_off(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with make_broadcast("memory://") as broadcast:
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

    async with make_broadcast("memory://") as broadcast:
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

    async with make_broadcast("memory://") as broadcast:
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
    async with make_broadcast("memory://") as broadcast:
        streams = Streams(broadcast, uow_factory, buffer=2, per_user=5)
        fast = streams.events("c", lambda e: True).__aiter__()
        slow = streams.events("c", lambda e: True).__aiter__()
        first = [asyncio.ensure_future(s.__anext__()) for s in (fast, slow)]
        await asyncio.sleep(0.05)
        assert len(broadcast._channels["c"].queues) == 1  # one queue feeds both streams
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
        assert "c" not in broadcast._channels  # the last one out unsubscribes


REDIS = "redis://127.0.0.1:6379/15"


async def drop_pubsub_connection(name: str) -> None:
    """Kill, in Redis, the subscriber connection of the client named ``name`` (and only it:
    other tests share this Redis), as a Redis restart or a network cut would drop it."""
    admin = redis.Redis.from_url(REDIS)
    try:
        for client in await admin.client_list():
            if client["name"] == name and int(client["sub"]) > 0:
                await admin.client_kill_filter(_id=client["id"])
                return
        raise AssertionError(f"no subscriber connection named {name}")
    finally:
        await admin.aclose()


async def test_a_lost_connection_ends_every_stream_and_a_resumed_one_misses_nothing(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    user = uuid.uuid4()
    name = f"stacklo-test-{uuid.uuid4().hex[:8]}"
    channel = f"test:{uuid.uuid4()}"
    stored: list[OutboxEvent] = []

    async def replay(after: int) -> list[OutboxEvent]:
        return [e for e in stored if e.position > after]

    async def publish(position: int) -> None:
        stored.append(OutboxEvent(position, position, "wallet", "w", (user,), {"n": position}))
        await broadcast.publish(channel, event(position, user))

    async with make_broadcast(f"{REDIS}?client_name={name}") as broadcast:
        streams = Streams(broadcast, uow_factory, buffer=10, per_user=5)
        replaying = streams.events(channel, lambda e: True, after=0, replay=replay).__aiter__()
        live = streams.events(channel, lambda e: True).__aiter__()
        first = [asyncio.ensure_future(s.__anext__()) for s in (replaying, live)]
        await asyncio.sleep(0.2)  # both subscribed (one Redis subscription)
        await publish(1)
        assert [(await asyncio.wait_for(f, 5)).position for f in first] == [1, 1]

        await drop_pubsub_connection(name)
        for stream in (replaying, live):  # neither is left waiting for ever
            with pytest.raises(BroadcastLost):
                await asyncio.wait_for(stream.__anext__(), 5)
        await publish(2)  # nobody hears it live; the outbox keeps it

        for _ in range(100):  # the process connects again by itself
            if broadcast.available:
                break
            await asyncio.sleep(0.05)
        resumed = streams.events(channel, lambda e: True, after=1, replay=replay).__aiter__()
        assert (await asyncio.wait_for(resumed.__anext__(), 5)).position == 2  # replayed
        await publish(3)
        assert (await asyncio.wait_for(resumed.__anext__(), 5)).position == 3  # live again


async def test_a_subscribe_while_the_connection_is_down_is_refused_at_once(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    broadcast = make_broadcast(REDIS)  # never connected: as while it reconnects
    streams = Streams(broadcast, uow_factory, buffer=10, per_user=5)
    with pytest.raises(BroadcastUnavailable):
        async with streams.slot(uuid.uuid4()):
            pass
    stream = streams.events("c", lambda e: True).__aiter__()
    with pytest.raises(BroadcastUnavailable):
        await asyncio.wait_for(stream.__anext__(), 5)
