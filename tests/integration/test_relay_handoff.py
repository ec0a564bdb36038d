"""Two relays around a change of leader: a claim still committing when another relay takes
over must not let later events overtake it (subscribers drop what is older than they saw)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.realtime.relay import Relay


class Recorder:
    def __init__(self, published: list[int]):
        self._published = published

    async def publish(self, channel: str, message: str) -> None:
        self._published.append(json.loads(message)["p"])


def stalled(factory: SqlUnitOfWorkFactory, gate: asyncio.Event) -> Any:
    """Units of work whose commit waits for ``gate``: a leader that lost its lock while its
    claim was committing (SIGKILL, a proxy cutting its session) looks like this to the next."""

    @contextlib.asynccontextmanager
    async def make(**options: Any) -> AsyncIterator[Any]:
        async with factory(**options) as uow:
            commit = uow.commit

            async def late_commit() -> None:
                await gate.wait()
                await commit()

            uow.commit = late_commit  # type: ignore[method-assign]
            yield uow

    return make


async def test_a_new_leader_waits_for_a_claim_in_flight_and_publishes_in_position_order(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    async with uow_factory() as uow:
        for n in range(3):
            await uow.outbox.notify(uuid.uuid4(), "test", {"n": n})
        await uow.commit()
    published: list[int] = []
    gate = asyncio.Event()
    old = Relay(stalled(uow_factory, gate), Recorder(published), batch=2)
    new = Relay(uow_factory, Recorder(published), batch=2)

    first = asyncio.create_task(old.publish_once())  # claims two events, commits late
    await asyncio.sleep(0.3)
    second = asyncio.create_task(new.publish_once())
    await asyncio.sleep(0.3)
    gate.set()
    await asyncio.gather(first, second)
    while await new.publish_once():
        pass

    seen = list(dict.fromkeys(published))  # at least once: repeats are dropped by position
    assert len(seen) == 3
    assert seen == sorted(seen), published
