"""Ended sessions close their sockets: the revocation announces itself in the same statement,
the guard closes on the event, remembers recent ends, and sweeps the database as a backstop."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta

from broadcaster import Broadcast
from sqlalchemy import text

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.events import SESSIONS_ENDED, OutboxEvent
from stacklo.domain.models import RefreshToken, Session
from stacklo.realtime.channels import SESSIONS_CHANNEL, channels_for
from stacklo.realtime.sessions import SESSION_ENDED_CLOSE, SessionGuard
from stacklo.realtime.streams import Streams
from tests.integration.test_repositories import a_user


class Socket:
    def __init__(self) -> None:
        self.closed: list[int] = []

    async def close(self, code: int, reason: str) -> None:
        self.closed.append(code)


async def _sessions(
    uow_factory: SqlUnitOfWorkFactory, count: int
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    user = a_user()
    now = datetime.now(UTC)
    ids = []
    async with uow_factory() as uow:
        await uow.users.add(user)
        for _ in range(count):
            session = Session(uuid.uuid4(), user.id, now, now + timedelta(days=1))
            token = RefreshToken(
                uuid.uuid4(), session.id, uuid.uuid4().hex, now, session.expires_at
            )
            await uow.sessions.add(session, token)
            ids.append(session.id)
        await uow.commit()
    return user.id, ids


async def _events(uow_factory: SqlUnitOfWorkFactory) -> list[dict[str, object]]:
    async with uow_factory.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT payload FROM outbox_events WHERE topic = :t ORDER BY id"),
            {"t": SESSIONS_ENDED},
        )
        return [dict(r.payload) for r in rows]


async def test_revoking_announces_the_ended_sessions_in_the_same_transaction(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    user_id, (one, two, three) = await _sessions(uow_factory, 3)
    now = datetime.now(UTC)
    async with uow_factory() as uow:
        assert await uow.sessions.revoke(one, now, "logged_out")
    assert await _events(uow_factory) == []  # rolled back: nothing announced
    async with uow_factory() as uow:
        assert await uow.sessions.revoke(one, now, "logged_out")
        assert not await uow.sessions.revoke(one, now, "logged_out")  # already ended
        assert await uow.sessions.revoke_others(user_id, two, now, "password_changed") == 1
        await uow.commit()
    events = await _events(uow_factory)
    assert events == [
        {"sessions": [str(one)], "reason": "logged_out"},
        {"sessions": [str(three)], "reason": "password_changed"},
    ]
    event = OutboxEvent(1, 1, SESSIONS_ENDED, str(user_id), (user_id,), events[0])
    assert channels_for(event) == [SESSIONS_CHANNEL]


async def test_the_guard_closes_on_the_event_and_remembers_recent_ends(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    guard = SessionGuard(uow_factory, lambda: datetime.now(UTC), sweep_seconds=3600)
    ended, kept = uuid.uuid4(), uuid.uuid4()
    a, b, late = Socket(), Socket(), Socket()
    async with Broadcast("memory://") as broadcast:
        streams = Streams(broadcast, uow_factory, buffer=10, per_user=5)
        stop = asyncio.Event()
        task = asyncio.create_task(guard.run(streams, stop))
        await asyncio.sleep(0.05)  # following the channel
        with guard.register(ended, a.close), guard.register(kept, b.close):
            payload = {"sessions": [str(ended)], "reason": "logged_out"}
            wire = OutboxEvent(1, 1, SESSIONS_ENDED, "u", (), payload).to_wire()
            await broadcast.publish(SESSIONS_CHANNEL, json.dumps(wire))
            await asyncio.sleep(0.1)
            assert (a.closed, b.closed) == ([SESSION_ENDED_CLOSE], [])
            # A socket that authenticated just before the end but registers after it.
            with guard.register(ended, late.close):
                await asyncio.sleep(0.01)
            assert late.closed == [SESSION_ENDED_CLOSE]
        stop.set()
        await task


async def test_the_sweep_closes_what_events_missed(uow_factory: SqlUnitOfWorkFactory) -> None:
    _, (live, revoked) = await _sessions(uow_factory, 2)
    async with uow_factory() as uow:
        await uow.sessions.revoke(revoked, datetime.now(UTC), "logged_out")
        await uow.commit()
    guard = SessionGuard(uow_factory, lambda: datetime.now(UTC))
    gone, fine, unknown = Socket(), Socket(), Socket()
    with (
        guard.register(revoked, gone.close),
        guard.register(live, fine.close),
        guard.register(uuid.uuid4(), unknown.close),
    ):
        assert await guard.sweep() == 2
    assert (gone.closed, fine.closed, unknown.closed) == (
        [SESSION_ENDED_CLOSE],
        [],
        [SESSION_ENDED_CLOSE],
    )
    assert guard.open_sessions == 0
