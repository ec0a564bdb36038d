"""me, users (staff), currencies, auditEvents (staff), transaction(reference), node.

Whether the viewer may see an object is ``Visibility``'s to say; anything not visible is
null, exactly like something that does not exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import strawberry

from stacklo.domain import ledger, money
from stacklo.domain.models import KycStatus, Viewer
from stacklo.domain.validation import clean_text, names_nothing
from stacklo.schema.commerce import Checkout, Installment, InstallmentPlan, Merchant
from stacklo.schema.common import (
    AFTER,
    FIRST,
    Connection,
    Currency,
    decode_global_id,
    decode_sequence_cursor,
    decode_time_cursor,
    encode_cursor,
)
from stacklo.schema.context import Info
from stacklo.schema.fx import Quote
from stacklo.schema.kyc import KycDocument
from stacklo.schema.ledger import LedgerEntry, Transaction, Wallet, first_arg, wallet_owners
from stacklo.schema.notifications import Notification
from stacklo.schema.platform import PlatformStats
from stacklo.schema.users import AuditEvent, User


async def me(info: Info) -> User | None:
    viewer = await info.context.viewer()
    return User.of(viewer.user) if viewer else None


def currencies() -> list[Currency]:
    return [Currency.of(code) for code in money.CURRENCIES]


async def users(
    info: Info,
    first: Annotated[int | None, FIRST] = None,
    after: Annotated[str | None, AFTER] = None,
    search: Annotated[
        str | None,
        strawberry.argument(
            description="Only users whose email, full name or phone number contains this text, "
            "ignoring case and surrounding spaces; % and _ are matched as themselves, not as "
            "wildcards. At most 100 characters, no control characters (INVALID_INPUT "
            "otherwise); empty means no filter."
        ),
    ] = None,
    kyc_status: Annotated[
        KycStatus | None, strawberry.argument(description="Only users with this KYC status.")
    ] = None,
) -> Connection[User]:
    limit = first_arg(info, first)
    key = decode_time_cursor(after)
    if search is not None:
        # Trimmed, NFC, at most 100 characters, no control characters (NUL included). The
        # wildcards % and _ (and \\) are matched literally by the repository.
        search = clean_text(search, ("search",), max_len=100, required=False)
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
    first: Annotated[int | None, FIRST] = None,
    after: Annotated[str | None, AFTER] = None,
    action: Annotated[
        str | None,
        strawberry.argument(
            description="Only events with exactly this action, e.g. wallet.frozen."
        ),
    ] = None,
    actor_id: Annotated[
        strawberry.ID | None,
        strawberry.argument(
            description="Only events by this user (a User global ID); any other id matches nothing."
        ),
    ] = None,
) -> Connection[AuditEvent]:
    limit = first_arg(info, first)
    after_id = decode_sequence_cursor(after)
    actor: uuid.UUID | None = None
    if actor_id is not None:
        decoded = decode_global_id(actor_id, "User")
        actor = _uuid(decoded[1]) if decoded else None
        if actor is None:  # names nobody: nothing they did
            return Connection[AuditEvent].build([], has_next=False, has_previous=False)
    if action is not None and names_nothing(action, 64):  # no such action was recorded
        return Connection[AuditEvent].build([], has_next=False, has_previous=False)
    async with info.context.services.uow(read_only=True) as uow:
        page = await uow.audit.page(first=limit, after=after_id, action=action, actor_id=actor)
    return Connection[AuditEvent].build(
        [(encode_cursor(e.id), AuditEvent.of(e)) for e in page.items],
        has_next=page.has_next,
        has_previous=after is not None,
    )


async def transaction(
    info: Info,
    reference: Annotated[
        str,
        strawberry.argument(
            description="The public reference, e.g. TXN-7Q2K9F4D; case and surrounding spaces "
            "do not matter."
        ),
    ],
) -> Transaction | None:
    """By public reference; null unless the viewer may see it."""
    viewer = await info.context.viewer()
    if viewer is None or names_nothing(reference.strip(), 32):
        return None
    async with info.context.services.uow(read_only=True) as uow:
        tx = await uow.ledger.by_reference(reference.strip().upper())
    return await _visible_transaction(info, viewer, tx)


async def platform_stats(info: Info) -> PlatformStats:
    """Staff only (the field's permission)."""
    services = info.context.services
    return PlatformStats.of(await services.platform.stats(), services.streams.open_count())


async def node(
    info: Info,
    id: Annotated[
        strawberry.ID, strawberry.argument(description="A global ID, as any object's id gives it.")
    ],
) -> (
    User
    | Wallet
    | AuditEvent
    | Transaction
    | LedgerEntry
    | Quote
    | Merchant
    | Checkout
    | InstallmentPlan
    | Installment
    | Notification
    | KycDocument
    | None
):
    """Any object by global ID. A foreign, unknown or malformed id is null, never an error."""
    viewer = await info.context.viewer()
    decoded = decode_global_id(id)
    if viewer is None or decoded is None:
        return None
    type_name, raw = decoded
    if type_name in ("LedgerEntry", "AuditEvent"):
        number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None
        if number is None:
            return None
        if type_name == "LedgerEntry":
            return await _entry(info, viewer, number)
        return await _audit_event(info, viewer, number)
    key = _uuid(raw)
    if key is None:
        return None
    visibility = info.context.services.visibility
    loaders = info.context.loaders
    if type_name == "User":
        user = await loaders.users.load(key)
        return User.of(user) if user and visibility.user(viewer, user) else None
    if type_name == "Wallet":
        wallet = await loaders.wallets.load(key)
        return Wallet.of(wallet) if wallet and visibility.wallet(viewer, wallet) else None
    if type_name == "Transaction":
        return await _visible_transaction(info, viewer, await loaders.transactions.load(key))
    if type_name == "Quote":
        quote = await info.context.services.quotes.get(key)
        return Quote.of(quote) if quote and visibility.quote(viewer, quote) else None
    if type_name == "Merchant":
        merchant = await loaders.merchants.load(key)
        return Merchant.of(merchant) if merchant and visibility.merchant(viewer, merchant) else None
    if type_name == "Checkout":
        found = await info.context.services.checkouts.get(key)
        return Checkout.of(found) if found and visibility.checkout(viewer) else None
    if type_name in ("InstallmentPlan", "Installment"):
        return await _plan_or_installment(info, viewer, type_name, key)
    if type_name == "Notification":
        note = await info.context.services.notifications.get(viewer.user, key)
        return Notification.of(note) if note else None
    if type_name == "KycDocument":
        document = await info.context.services.kyc_documents.get(key)
        visible = document and visibility.kyc_documents(viewer, document.user_id)
        return KycDocument.of(document) if document and visible else None
    return None


async def _plan_or_installment(
    info: Info, viewer: Viewer, type_name: str, key: uuid.UUID
) -> InstallmentPlan | Installment | None:
    async with info.context.services.uow(read_only=True) as uow:
        plan_id = key if type_name == "InstallmentPlan" else await uow.plans.of_installment(key)
        plan = await uow.plans.get(plan_id) if plan_id else None
    if plan is None or not info.context.services.visibility.plan(viewer, plan.user_id):
        return None
    if type_name == "InstallmentPlan":
        return InstallmentPlan.of(plan)
    found = next(i for i in plan.installments if i.id == key)
    return Installment.of(found, plan.currency)


async def _visible_transaction(
    info: Info, viewer: Viewer, tx: ledger.Transaction | None
) -> Transaction | None:
    if tx is None:
        return None
    visible = info.context.services.visibility.transaction(viewer, await wallet_owners(info, tx))
    return Transaction.of(tx) if visible else None


async def _entry(info: Info, viewer: Viewer, entry_id: int) -> LedgerEntry | None:
    async with info.context.services.uow(read_only=True) as uow:
        entry = await uow.ledger.entry(entry_id)
    wallet = await info.context.loaders.wallets.load(entry.wallet_id) if entry else None
    if entry is None or wallet is None:
        return None
    return LedgerEntry.of(entry) if info.context.services.visibility.entry(viewer, wallet) else None


async def _audit_event(info: Info, viewer: Viewer, event_id: int) -> AuditEvent | None:
    if not info.context.services.visibility.audit_log(viewer):
        return None
    async with info.context.services.uow(read_only=True) as uow:
        event = await uow.audit.get(event_id)
    return AuditEvent.of(event) if event else None


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
