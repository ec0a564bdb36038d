"""me, users (staff), currencies, openWallet, auditEvents (staff), node."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from stacklo.domain import money
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import KycStatus, Viewer
from stacklo.domain.wallets import open_wallet as open_wallet_use_case
from stacklo.resolvers.errors import user_errors
from stacklo.resolvers.money import may_see_transaction
from stacklo.schema.common import (
    Connection,
    Currency,
    decode_cursor,
    decode_global_id,
    encode_cursor,
    page_size,
)
from stacklo.schema.context import Info
from stacklo.schema.fx import Quote
from stacklo.schema.types import (
    AuditEvent,
    LedgerEntry,
    OpenWalletInput,
    OpenWalletPayload,
    Transaction,
    User,
    Wallet,
)


def _first(info: Info, first: int | None) -> int:
    s = info.context.services.settings
    return page_size(first, s.default_page_size, s.max_page_size)


async def me(info: Info) -> User | None:
    viewer = await info.context.viewer()
    return User.of(viewer.user) if viewer else None


def currencies() -> list[Currency]:
    return [Currency.of(code) for code in money.CURRENCIES]


async def users(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    search: str | None = None,
    kyc_status: KycStatus | None = None,
) -> Connection[User]:
    limit = _first(info, first)
    parts = decode_cursor(after, 2)
    try:
        key = (datetime.fromisoformat(parts[0]), uuid.UUID(parts[1])) if parts else None
    except ValueError:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "after is not a valid cursor", ("after",)
        ) from None
    if search is not None and len(search) > 100:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "search is longer than 100 characters", ("search",)
        )
    async with info.context.services.uow(read_only=True) as uow:
        page = await uow.users.page(
            first=limit, after=key, search=search or None, kyc_status=kyc_status
        )
    return Connection[User].build(
        [(encode_cursor(u.created_at.isoformat(), u.id), User.of(u)) for u in page.items],
        has_next=page.has_next,
        has_previous=after is not None,
    )


async def audit_events(
    info: Info,
    first: int | None = None,
    after: str | None = None,
    action: str | None = None,
    actor_id: strawberry.ID | None = None,
) -> Connection[AuditEvent]:
    limit = _first(info, first)
    parts = decode_cursor(after, 1)
    if parts and not parts[0].isdigit():
        raise DomainError(ErrorCode.INVALID_INPUT, "after is not a valid cursor", ("after",))
    actor: uuid.UUID | None = None
    if actor_id is not None:
        decoded = decode_global_id(actor_id, "User")
        if decoded is None:
            return Connection[AuditEvent].build([], has_next=False, has_previous=False)
        actor = _uuid(decoded[1])
        if actor is None:
            return Connection[AuditEvent].build([], has_next=False, has_previous=False)
    async with info.context.services.uow(read_only=True) as uow:
        page = await uow.audit.page(
            first=limit, after=int(parts[0]) if parts else None, action=action, actor_id=actor
        )
    return Connection[AuditEvent].build(
        [(encode_cursor(e.id), AuditEvent.of(e)) for e in page.items],
        has_next=page.has_next,
        has_previous=after is not None,
    )


@user_errors(OpenWalletPayload)
async def open_wallet(info: Info, input: OpenWalletInput) -> OpenWalletPayload:
    viewer = await info.context.require_viewer()
    s = info.context.services
    wallet = await open_wallet_use_case(
        s.uow, s.clock, viewer.user.id, input.currency, info.context.meta
    )
    return OpenWalletPayload(wallet=Wallet.of(wallet))


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _may_see(viewer: Viewer, owner: uuid.UUID | None, info: Info, resource: str) -> bool:
    if owner is not None and owner == viewer.user.id:
        return True
    return info.context.services.authorizer.allowed(viewer.user.roles, resource, "read")


async def node(
    info: Info, id: strawberry.ID
) -> User | Wallet | AuditEvent | Transaction | LedgerEntry | Quote | None:
    """Any object by global ID. A foreign, unknown or malformed id is null, never an error."""
    viewer = await info.context.viewer()
    decoded = decode_global_id(id)
    if viewer is None or decoded is None:
        return None
    type_name, raw = decoded
    services = info.context.services
    if type_name == "LedgerEntry":
        if not raw.isdigit() or len(raw) > 18:
            return None
        async with services.uow(read_only=True) as uow:
            entry = await uow.ledger.entry(int(raw))
        if entry is None:
            return None
        wallet = await info.context.loaders.wallets.load(entry.wallet_id)
        return (
            LedgerEntry.of(entry)
            if wallet and _may_see(viewer, wallet.user_id, info, "wallets")
            else None
        )
    if type_name == "AuditEvent":
        if not raw.isdigit() or not services.authorizer.allowed(viewer.user.roles, "audit", "read"):
            return None
        async with services.uow(read_only=True) as uow:
            event = await uow.audit.get(int(raw))
        return AuditEvent.of(event) if event else None
    key = _uuid(raw)
    if key is None:
        return None
    if type_name == "User":
        user = await info.context.loaders.users.load(key)
        return User.of(user) if user and _may_see(viewer, user.id, info, "users") else None
    if type_name == "Quote":
        quote = await services.exchange.quote_for(viewer.user, key)
        return Quote.of(quote) if quote else None
    if type_name == "Wallet":
        wallet = await info.context.loaders.wallets.load(key)
        visible = wallet is not None and _may_see(viewer, wallet.user_id, info, "wallets")
        return Wallet.of(wallet) if wallet and visible else None
    if type_name == "Transaction":
        tx = await info.context.loaders.transactions.load(key)
        return Transaction.of(tx) if tx and await may_see_transaction(info, viewer, tx) else None
    return None
