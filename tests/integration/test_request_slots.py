"""A request holds at most its share of database connections, however many reads it fans out
into; the rest of the pool stays free for everyone else."""

from __future__ import annotations

import asyncio

from stacklo.data.uow import SqlUnitOfWorkFactory, limit_connections


async def _most_at_once(uow_factory: SqlUnitOfWorkFactory, reads: int) -> int:
    inside = most = 0

    async def read() -> None:
        nonlocal inside, most
        async with uow_factory(read_only=True):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    await asyncio.gather(*(read() for _ in range(reads)))
    return most


async def test_a_request_fanning_out_holds_at_most_its_slots(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    async def request() -> int:
        limit_connections(2)  # what the web layer does for every request and socket operation
        return await _most_at_once(uow_factory, 12)

    assert await asyncio.create_task(request()) == 2


async def test_without_a_request_the_pool_is_the_limit(uow_factory: SqlUnitOfWorkFactory) -> None:
    async def job() -> int:
        return await _most_at_once(uow_factory, 4)

    assert await asyncio.create_task(job()) == 4
