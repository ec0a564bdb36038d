"""The outbox relay: publishes committed events to broadcast channels, at least once.

It wakes on PostgreSQL NOTIFY (sent by the outbox bell, ``data.outbox.OutboxBell``, after a
unit of work commits) and also polls, so a lost notification only delays. Any number of
relays may run: one leads (a session advisory lock), the others stand by and take over when
its connection drops.

Each batch is positioned and committed first, then published, then marked published. A
subscriber's replay reads positioned events, so whatever it may have received live is already
in the database when it resumes. If the relay dies after positioning, the next leader
publishes that batch again with the same positions (at least once; subscribers drop what they
have already seen by position). Claims are taken one transaction at a time (a transaction
advisory lock), so a leader that took over while the last one's claim was still committing
waits for it and publishes that batch first: positions go out in order across a change of
leader.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from prometheus_client import Counter, Gauge

from stacklo.domain.ports import UnitOfWorkFactory
from stacklo.observability import log
from stacklo.realtime.channels import channels_for

EVENTS_PUBLISHED = Counter("stacklo_outbox_events_published_total", "Outbox events published.")
OUTBOX_LAG = Gauge("stacklo_outbox_lag_seconds", "Age of the oldest unpublished outbox event.")


class Publisher(Protocol):
    async def publish(self, channel: str, message: str) -> None: ...


class Leadership(Protocol):
    # Set when the session holding the lead ends (the database restarted or dropped it).
    lost: asyncio.Event

    async def lead(self, on_notify: Callable[..., None]) -> bool: ...
    async def alive(self) -> bool: ...
    async def close(self) -> None: ...


async def wait_any(events: list[asyncio.Event], seconds: float) -> None:
    """Until one of ``events`` is set or ``seconds`` have passed."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


class Relay:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        broadcast: Publisher,
        *,
        batch: int = 500,
        poll_seconds: float = 1.0,
        retention: timedelta = timedelta(days=7),
    ):
        self._uow = uow
        self._broadcast = broadcast
        self._batch = batch
        self._poll = poll_seconds
        self._retention = retention
        self.wake = asyncio.Event()
        self._last_prune = 0.0

    def notify(self, *_: object) -> None:
        """asyncpg LISTEN callback: something committed."""
        self.wake.set()

    async def run(self, stop: asyncio.Event, leadership: Leadership) -> None:
        leading = False
        try:
            while not stop.is_set():
                # Cleared before reading, so a NOTIFY that lands mid-batch wakes the next
                # round instead of waiting out the poll interval.
                self.wake.clear()
                try:
                    if not leading or not await leadership.alive():
                        await leadership.close() if leading else None
                        leading = await leadership.lead(self.notify)
                        if leading:
                            log.info("relay_leading")
                    if leading:
                        while await self.publish_once() == self._batch:
                            pass  # a full batch: there may be more right away
                        await self._housekeeping()
                except asyncio.CancelledError:
                    raise
                except Exception as e:  # the database or broker blinked: try again shortly
                    log.warning("relay_error", error=repr(e))
                    leading = False
                    await leadership.close()
                # The leader's session lost ends the wait: the lead is sought again at once.
                await wait_any(
                    [self.wake, stop, *([leadership.lost] if leading else [])], self._poll
                )
        finally:
            await leadership.close()

    async def publish_once(self) -> int:
        """Publish one batch; how many events went out (0 when idle)."""
        async with self._uow() as uow:
            # Before reading: a claim still committing elsewhere is then seen, and published
            # first, as positioned-but-unpublished.
            await uow.outbox.claiming()
            events = await uow.outbox.positioned_unpublished(self._batch)
            if not events:
                events = await uow.outbox.claim(self._batch)
            await uow.commit()
        if not events:
            return 0
        for event in events:
            # One at a time: broadcaster's PostgreSQL backend shares one connection, which
            # refuses concurrent commands ("another operation is in progress").
            message = json.dumps(event.to_wire())
            for channel in channels_for(event):
                await self._broadcast.publish(channel, message)
        async with self._uow() as uow:
            await uow.outbox.mark_published(events)
            await uow.commit()
        EVENTS_PUBLISHED.inc(len(events))
        return len(events)

    async def _housekeeping(self) -> None:
        async with self._uow(read_only=True) as uow:
            oldest = await uow.outbox.oldest_unpublished()
        OUTBOX_LAG.set((datetime.now(UTC) - oldest).total_seconds() if oldest else 0)
        if time.monotonic() - self._last_prune > 3600:
            self._last_prune = time.monotonic()
            async with self._uow() as uow:
                pruned = await uow.outbox.prune(datetime.now(UTC) - self._retention)
                await uow.commit()
            if pruned:
                log.info("outbox_pruned", events=pruned)
