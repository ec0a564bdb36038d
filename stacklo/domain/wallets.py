"""Opening wallets. Movements live in the ledger."""

from __future__ import annotations

import uuid
from datetime import datetime

from stacklo.domain.errors import Conflict, DomainError, ErrorCode
from stacklo.domain.models import RequestMeta, Wallet, audit
from stacklo.domain.money import CurrencyCode
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory


async def add_wallet(
    uow: UnitOfWork,
    user_id: uuid.UUID,
    code: CurrencyCode,
    now: datetime,
    meta: RequestMeta,
    **why: str,
) -> Wallet:
    """Open a wallet inside the caller's transaction, audited; Conflict if one exists."""
    wallet = Wallet.open(user_id, code, now)
    await uow.wallets.add(wallet)
    await uow.audit.record(
        audit(
            "wallet.opened",
            meta,
            actor_id=user_id,
            target_type="Wallet",
            target_id=wallet.id,
            currency=code.value,
            **why,
        )
    )
    return wallet


async def open_wallet(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    user_id: uuid.UUID,
    code: CurrencyCode,
    meta: RequestMeta,
) -> Wallet:
    async with uow_factory() as uow:
        try:
            wallet = await add_wallet(uow, user_id, code, clock(), meta)
        except Conflict:
            raise DomainError(
                ErrorCode.WALLET_EXISTS,
                f"You already have a {code.value} wallet.",
                ("input", "currency"),
            ) from None
        await uow.commit()
    return wallet
