"""The unit of work: one connection, one transaction, rolled back unless committed."""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from stacklo.data.commerce import Checkouts, Merchants
from stacklo.data.fx import Quotes, Rates
from stacklo.data.identity import KycDocuments
from stacklo.data.ledger import Idempotency, Ledger
from stacklo.data.lending import Credit, Plans
from stacklo.data.notifications import NotificationStore
from stacklo.data.outbox import Outbox
from stacklo.data.platform import PlatformFigures
from stacklo.data.repositories import Audit, Changed, Sessions, Users, Wallets

# Ended sessions and changed users, told after a commit.
AfterCommit = Callable[[set[uuid.UUID], set[uuid.UUID]], None]

# Connections the current request (or WebSocket operation) may hold at once. Set per request by
# the web layer (``limit_connections``); tasks a request spawns share it. Unset (background
# jobs, the CLI): no limit beyond the pool's. So a query that fans out into many batch loads
# waits its turn instead of taking the whole pool from everyone else.
_request_slots: contextvars.ContextVar[asyncio.Semaphore | None] = contextvars.ContextVar(
    "stacklo_request_slots", default=None
)


def limit_connections(count: int) -> None:
    """From now on in this task (and the tasks it starts), at most ``count`` connections."""
    _request_slots.set(asyncio.Semaphore(count))


class SqlUnitOfWork:
    users: Users
    sessions: Sessions
    wallets: Wallets
    audit: Audit
    ledger: Ledger
    idempotency: Idempotency
    outbox: Outbox
    rates: Rates
    quotes: Quotes
    merchants: Merchants
    checkouts: Checkouts
    credit: Credit
    plans: Plans
    platform: PlatformFigures
    notifications: NotificationStore
    kyc_documents: KycDocuments

    def __init__(
        self,
        engine: AsyncEngine,
        read_only: bool = False,
        single_write: bool = False,
        after_commit: AfterCommit | None = None,
        committed: Callable[[], None] | None = None,
    ):
        self._engine = engine
        self._after_commit = after_commit
        self._committed = committed
        self._read_only = read_only
        # One write at most, atomic on its own (a claiming booking): no BEGIN, no COMMIT.
        self._single_write = single_write
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None
        self._slots: asyncio.Semaphore | None = None

    async def __aenter__(self) -> Self:
        self._slots = _request_slots.get()
        if self._slots is not None:
            await self._slots.acquire()
        try:
            self._conn = await self._engine.connect()
        except BaseException:
            self._release()
            raise
        if self._read_only or self._single_write:
            # Reads need no transaction: autocommit saves the BEGIN and ROLLBACK round trips.
            await self._conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            self._tx = await self._conn.begin()
        self._changed = Changed()
        self.users = Users(self._conn, self._changed)
        self.sessions = Sessions(self._conn, self._changed)
        self.wallets = Wallets(self._conn)
        self.audit = Audit(self._conn)
        self.ledger = Ledger(self._conn)
        self.idempotency = Idempotency(self._conn)
        self.outbox = Outbox(self._conn)
        self.rates = Rates(self._conn)
        self.quotes = Quotes(self._conn)
        self.merchants = Merchants(self._conn)
        self.checkouts = Checkouts(self._conn)
        self.credit = Credit(self._conn)
        self.plans = Plans(self._conn)
        self.platform = PlatformFigures(self._conn)
        self.notifications = NotificationStore(self._conn)
        self.kyc_documents = KycDocuments(self._conn)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._conn is not None
        try:
            if self._tx is not None and self._tx.is_active:
                await self._tx.rollback()
        finally:
            try:
                await self._conn.close()
            finally:
                self._conn = self._tx = None
                self._release()

    def _release(self) -> None:
        if self._slots is not None:
            self._slots.release()
            self._slots = None

    async def commit(self) -> None:
        if self._single_write:  # the one write committed itself
            if self._committed is not None:
                self._committed()
            return
        if self._tx is None:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self._tx.commit()
        if self._committed is not None:
            self._committed()
        if self._after_commit is not None and (self._changed.sessions or self._changed.users):
            self._after_commit(self._changed.sessions, self._changed.users)


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine
        # Told which sessions ended and which users changed, once committed (the viewers the
        # authenticator remembers in this process go at once; other processes hear the events).
        self.after_commit: AfterCommit | None = None
        # Told after every commit (the outbox bell: whatever was written may carry events).
        self.committed: Callable[[], None] | None = None

    def __call__(self, read_only: bool = False, single_write: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.engine, read_only, single_write, self.after_commit, self.committed
        )
