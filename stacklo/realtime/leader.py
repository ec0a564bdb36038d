"""Periodic work that one process does at a time: whoever holds the job's advisory lock runs
``step`` every ``interval`` seconds; the others wait to take over. A lost database connection
loses the lead (and the lock with it); the next round tries to lead again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from stacklo.observability import log
from stacklo.realtime.relay import Leadership


async def run_as_leader(
    name: str,
    leadership: Leadership,
    stop: asyncio.Event,
    interval: float,
    step: Callable[[], Awaitable[object]],
) -> None:
    leading = False
    try:
        while not stop.is_set():
            try:
                if not leading or not await leadership.alive():
                    await leadership.close() if leading else None
                    leading = await leadership.lead(lambda *_: None)
                    if leading:
                        log.info(f"{name}_leading")
                if leading:
                    await step()
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the database blinked: try again next round
                log.warning(f"{name}_error", error=repr(e))
                leading = False
                await leadership.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
    finally:
        await leadership.close()
