"""Per-request context: who is asking, from where, and the application's services.

Over HTTP a context lives for one request. A WebSocket has one context for the connection, but
each operation on it runs with its own viewer (authenticated again when the operation starts,
so an ended session runs nothing) and its own batch loaders (so a long-lived socket never
serves stale cached rows): ``begin_operation`` sets them for the operation's task and the
tasks it spawns.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info as _Info

from stacklo.domain.commerce import Checkout, Merchant
from stacklo.domain.errors import Unauthenticated
from stacklo.domain.identity import KycDocument
from stacklo.domain.installments import Plan
from stacklo.domain.ledger import StatusChange, Transaction
from stacklo.domain.models import RequestMeta, User, Viewer, Wallet
from stacklo.domain.ports import StatementEntry

if TYPE_CHECKING:
    from stacklo.auth.throttle import AuthThrottle
    from stacklo.auth.tokens import Authenticator
    from stacklo.config import Settings
    from stacklo.domain.auth import AuthService
    from stacklo.domain.budget import Budget
    from stacklo.domain.checkouts import Checkouts
    from stacklo.domain.conversions import Conversions
    from stacklo.domain.credit_applications import CreditApplications
    from stacklo.domain.funding import Funding
    from stacklo.domain.kyc import Kyc
    from stacklo.domain.kyc_documents import KycDocuments
    from stacklo.domain.merchants import Merchants
    from stacklo.domain.notifications import Notifications
    from stacklo.domain.plans import Plans
    from stacklo.domain.platform import Platform
    from stacklo.domain.ports import Clock, UnitOfWorkFactory
    from stacklo.domain.quotes import Quotes
    from stacklo.domain.rates import Rates
    from stacklo.domain.transfers import Transfers
    from stacklo.domain.visibility import Visibility
    from stacklo.domain.wallets import Wallets
    from stacklo.realtime.sessions import SessionGuard
    from stacklo.realtime.streams import Streams


@dataclass
class Services:
    """Built once by the app's lifespan; shared by every request. The use cases, one per
    capability, and the one rule of who may see what (``visibility``)."""

    settings: Settings
    uow: UnitOfWorkFactory
    clock: Clock
    visibility: Visibility
    auth: AuthService
    authenticator: Authenticator
    throttle: AuthThrottle
    budget: Budget
    kyc: Kyc
    kyc_documents: KycDocuments
    wallets: Wallets
    transfers: Transfers
    funding: Funding
    rates: Rates
    quotes: Quotes
    conversions: Conversions
    streams: Streams
    sessions: SessionGuard
    merchants: Merchants
    checkouts: Checkouts
    plans: Plans
    credit: CreditApplications
    platform: Platform
    notifications: Notifications


class Loaders:
    """Request-scoped batch loaders, so a list of users costs one wallet query, not N, and a
    page of transactions or checkouts costs the same statements at any size."""

    # Each made on first use: a request or a socket event uses a few of them at most.
    def __init__(self, services: Services):
        self._services = services

    @cached_property
    def wallets_by_user(self) -> DataLoader[uuid.UUID, list[Wallet]]:
        return DataLoader[uuid.UUID, list[Wallet]](self._wallets_by_user)

    @cached_property
    def users(self) -> DataLoader[uuid.UUID, User | None]:
        return DataLoader[uuid.UUID, User | None](self._users)

    @cached_property
    def wallets(self) -> DataLoader[uuid.UUID, Wallet | None]:
        return DataLoader[uuid.UUID, Wallet | None](self._wallets)

    @cached_property
    def transactions(self) -> DataLoader[uuid.UUID, Transaction | None]:
        return DataLoader[uuid.UUID, Transaction | None](self._transactions)

    @cached_property
    def history(self) -> DataLoader[uuid.UUID, list[StatusChange]]:
        return DataLoader[uuid.UUID, list[StatusChange]](self._history)

    @cached_property
    def entries(self) -> DataLoader[uuid.UUID, Sequence[StatementEntry]]:
        return DataLoader[uuid.UUID, Sequence[StatementEntry]](self._entries)

    @cached_property
    def merchants(self) -> DataLoader[uuid.UUID, Merchant | None]:
        return DataLoader[uuid.UUID, Merchant | None](self._merchants)

    @cached_property
    def merchant_of_user(self) -> DataLoader[uuid.UUID, Merchant | None]:
        return DataLoader[uuid.UUID, Merchant | None](self._merchant_of_user)

    @cached_property
    def checkouts(self) -> DataLoader[uuid.UUID, Checkout | None]:
        return DataLoader[uuid.UUID, Checkout | None](self._checkouts)

    @cached_property
    def checkout_refunds(self) -> DataLoader[uuid.UUID, list[uuid.UUID]]:
        return DataLoader[uuid.UUID, list[uuid.UUID]](self._checkout_refunds)

    @cached_property
    def plan_of_checkout(self) -> DataLoader[uuid.UUID, Plan | None]:
        return DataLoader[uuid.UUID, Plan | None](self._plan_of_checkout)

    @cached_property
    def kyc_documents(self) -> DataLoader[uuid.UUID, list[KycDocument]]:
        return DataLoader[uuid.UUID, list[KycDocument]](self._kyc_documents)

    async def _wallets_by_user(self, keys: list[uuid.UUID]) -> list[list[Wallet]]:
        async with self._services.uow(read_only=True) as uow:
            found = await uow.wallets.for_users(keys)
        return [found.get(k, []) for k in keys]

    async def _wallets(self, keys: list[uuid.UUID]) -> list[Wallet | None]:
        async with self._services.uow(read_only=True) as uow:
            found = {w.id: w for w in await uow.wallets.get_many(keys)}
        return [found.get(k) for k in keys]

    async def _transactions(self, keys: list[uuid.UUID]) -> list[Transaction | None]:
        async with self._services.uow(read_only=True) as uow:
            found = {t.id: t for t in await uow.ledger.get_many(keys)}
        return [found.get(k) for k in keys]

    async def _history(self, keys: list[uuid.UUID]) -> list[list[StatusChange]]:
        async with self._services.uow(read_only=True) as uow:
            found = await uow.ledger.history(keys)
        return [found.get(k, []) for k in keys]

    async def _entries(self, keys: list[uuid.UUID]) -> list[Sequence[StatementEntry]]:
        async with self._services.uow(read_only=True) as uow:
            found = await uow.ledger.entries_of(keys)
        return [found.get(k, []) for k in keys]

    async def _merchants(self, keys: list[uuid.UUID]) -> list[Merchant | None]:
        async with self._services.uow(read_only=True) as uow:
            found = {m.id: m for m in await uow.merchants.get_many(keys)}
        return [found.get(k) for k in keys]

    async def _merchant_of_user(self, keys: list[uuid.UUID]) -> list[Merchant | None]:
        async with self._services.uow(read_only=True) as uow:
            found = await uow.merchants.for_users(keys)
        return [found.get(k) for k in keys]

    async def _kyc_documents(self, keys: list[uuid.UUID]) -> list[list[KycDocument]]:
        async with self._services.uow(read_only=True) as uow:
            found = await uow.kyc_documents.for_users(keys)
        return [found.get(k, []) for k in keys]

    async def _checkouts(self, keys: list[uuid.UUID]) -> list[Checkout | None]:
        async with self._services.uow(read_only=True) as uow:
            found = {c.id: c for c in await uow.checkouts.get_many(keys)}
        return [found.get(k) for k in keys]

    async def _plan_of_checkout(self, keys: list[uuid.UUID]) -> list[Plan | None]:
        async with self._services.uow(read_only=True) as uow:
            found = await uow.plans.for_checkouts(keys)
        return [found.get(k) for k in keys]

    async def _checkout_refunds(self, keys: list[uuid.UUID]) -> list[list[uuid.UUID]]:
        async with self._services.uow(read_only=True) as uow:
            found = await uow.checkouts.refunds(keys)
        return [found.get(k, []) for k in keys]

    async def _users(self, keys: list[uuid.UUID]) -> list[User | None]:
        async with self._services.uow(read_only=True) as uow:
            found = {u.id: u for u in await uow.users.get_many(keys)}
        return [found.get(k) for k in keys]


@dataclass(slots=True)
class _Operation:
    owner: Context
    viewer: asyncio.Future[Viewer | None]
    loaders: Loaders


_operation: contextvars.ContextVar[_Operation | None] = contextvars.ContextVar(
    "stacklo_operation", default=None
)


@dataclass
class Context:
    services: Services
    meta: RequestMeta
    bearer: str | None = None
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    # WebSocket only: the connection's own state (timers, its session registration).
    socket: Any = None
    _loaders: Loaders = field(init=False, repr=False)
    _viewer: asyncio.Future[Viewer | None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self._loaders = Loaders(self.services)

    @property
    def loaders(self) -> Loaders:
        op = self._operation()
        return op.loaders if op is not None else self._loaders

    async def viewer(self) -> Viewer | None:
        """The caller, or None when no token was sent. A bad token is UNAUTHENTICATED."""
        op = self._operation()
        if op is not None:
            return await asyncio.shield(op.viewer)
        if self._viewer is None:
            self._viewer = asyncio.ensure_future(self._authenticate())
        return await asyncio.shield(self._viewer)

    async def require_viewer(self) -> Viewer:
        viewer = await self.viewer()
        if viewer is None:
            raise Unauthenticated()
        return viewer

    def set_viewer(self, viewer: Viewer) -> None:
        self._viewer = _done(viewer)

    def begin_operation(self, viewer: Viewer | None) -> None:
        """This task (a WebSocket operation) runs as ``viewer`` with fresh loaders."""
        _operation.set(_Operation(self, _done(viewer), Loaders(self.services)))

    def _operation(self) -> _Operation | None:
        op = _operation.get()
        return op if op is not None and op.owner is self else None

    async def _authenticate(self) -> Viewer | None:
        if not self.bearer:
            return None
        return await self.services.authenticator.authenticate(self.bearer)


def _done(viewer: Viewer | None) -> asyncio.Future[Viewer | None]:
    future: asyncio.Future[Viewer | None] = asyncio.get_running_loop().create_future()
    future.set_result(viewer)
    return future


Info = _Info[Context, None]
