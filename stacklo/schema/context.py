"""Per-request context: who is asking, from where, and the application's services."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from strawberry.dataloader import DataLoader
from strawberry.types import Info as _Info

from stacklo.domain.errors import Unauthenticated
from stacklo.domain.ledger import StatusChange, Transaction
from stacklo.domain.models import RequestMeta, User, Viewer, Wallet
from stacklo.domain.ports import StatementEntry

if TYPE_CHECKING:
    from stacklo.auth.rbac import Authorizer
    from stacklo.auth.tokens import Authenticator
    from stacklo.config import Settings
    from stacklo.domain.auth import AuthService
    from stacklo.domain.exchange import Exchange
    from stacklo.domain.payments import Payments
    from stacklo.domain.ports import Clock, UnitOfWorkFactory
    from stacklo.realtime.streams import Streams


@dataclass
class Services:
    """Built once by the app's lifespan; shared by every request."""

    settings: Settings
    uow: UnitOfWorkFactory
    auth: AuthService
    authenticator: Authenticator
    authorizer: Authorizer
    clock: Clock
    payments: Payments
    streams: Streams
    exchange: Exchange


class Loaders:
    """Request-scoped batch loaders, so a list of users costs one wallet query, not N."""

    def __init__(self, services: Services):
        self._services = services
        self.wallets_by_user = DataLoader[uuid.UUID, list[Wallet]](self._wallets_by_user)
        self.users = DataLoader[uuid.UUID, User | None](self._users)
        self.wallets = DataLoader[uuid.UUID, Wallet | None](self._wallets)
        self.transactions = DataLoader[uuid.UUID, Transaction | None](self._transactions)
        self.history = DataLoader[uuid.UUID, list[StatusChange]](self._history)
        self.entries = DataLoader[uuid.UUID, Sequence[StatementEntry]](self._entries)

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

    async def _users(self, keys: list[uuid.UUID]) -> list[User | None]:
        async with self._services.uow(read_only=True) as uow:
            found = {u.id: u for u in await uow.users.get_many(keys)}
        return [found.get(k) for k in keys]


@dataclass
class Context:
    services: Services
    meta: RequestMeta
    bearer: str | None = None
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    # WebSocket only: the timer that closes the socket when the access token expires.
    expiry: asyncio.TimerHandle | None = None
    loaders: Loaders = field(init=False)
    _viewer: asyncio.Future[Viewer | None] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.loaders = Loaders(self.services)

    async def viewer(self) -> Viewer | None:
        """The caller, or None when no token was sent. A bad token is UNAUTHENTICATED."""
        if self._viewer is None:
            self._viewer = asyncio.ensure_future(self._authenticate())
        return await asyncio.shield(self._viewer)

    async def require_viewer(self) -> Viewer:
        viewer = await self.viewer()
        if viewer is None:
            raise Unauthenticated()
        return viewer

    def set_viewer(self, viewer: Viewer) -> None:
        future: asyncio.Future[Viewer | None] = asyncio.get_running_loop().create_future()
        future.set_result(viewer)
        self._viewer = future

    async def _authenticate(self) -> Viewer | None:
        if not self.bearer:
            return None
        return await self.services.authenticator.authenticate(self.bearer)


Info = _Info[Context, None]
