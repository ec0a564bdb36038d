"""The unit of work: one connection, one transaction, rolled back unless committed."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction

from stacklo.data.fx import Quotes, Rates
from stacklo.data.ledger import Idempotency, Ledger
from stacklo.data.outbox import Outbox
from stacklo.data.repositories import Audit, Sessions, Users, Wallets


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

    def __init__(self, engine: AsyncEngine, read_only: bool = False):
        self._engine = engine
        self._read_only = read_only
        self._conn: AsyncConnection | None = None
        self._tx: AsyncTransaction | None = None

    async def __aenter__(self) -> Self:
        self._conn = await self._engine.connect()
        if self._read_only:
            # Reads need no transaction: autocommit saves the BEGIN and ROLLBACK round trips.
            await self._conn.execution_options(isolation_level="AUTOCOMMIT")
        else:
            self._tx = await self._conn.begin()
        self.users = Users(self._conn)
        self.sessions = Sessions(self._conn)
        self.wallets = Wallets(self._conn)
        self.audit = Audit(self._conn)
        self.ledger = Ledger(self._conn)
        self.idempotency = Idempotency(self._conn)
        self.outbox = Outbox(self._conn)
        self.rates = Rates(self._conn)
        self.quotes = Quotes(self._conn)
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
            await self._conn.close()
            self._conn = self._tx = None

    async def commit(self) -> None:
        if self._tx is None:
            raise RuntimeError("a read-only unit of work cannot commit")
        await self._tx.commit()


class SqlUnitOfWorkFactory:
    def __init__(self, engine: AsyncEngine):
        self.engine = engine

    def __call__(self, read_only: bool = False) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, read_only)
