"""Periodic work that one process does at a time: whoever holds the job's advisory lock runs
``step`` every ``interval`` seconds; the others wait to take over. A lost database connection
loses the lead (and the lock with it): the job notices at once, not at its next round, and
tries to lead again every ``RETRY_SECONDS`` until it does."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from stacklo.observability import log
from stacklo.realtime.relay import Leadership, wait_any

# Not leading (the database away, or another process leads): try again this soon, however long
# the job's interval (the scheduler's is 30 s), so leadership is back within about a second of
# the database or of the leader's exit. One advisory-lock query a second per job.
RETRY_SECONDS = 1.0


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
            if leading:
                await wait_any([stop, leadership.lost], interval)
            else:
                await wait_any([stop], min(interval, RETRY_SECONDS))
    finally:
        await leadership.close()
