"""Opening wallets. Movements live in the ledger."""

from __future__ import annotations

import uuid

from stacklo.domain.errors import Conflict, DomainError, ErrorCode
from stacklo.domain.models import RequestMeta, Wallet, audit
from stacklo.domain.money import CurrencyCode
from stacklo.domain.ports import Clock, UnitOfWorkFactory


async def open_wallet(
    uow_factory: UnitOfWorkFactory,
    clock: Clock,
    user_id: uuid.UUID,
    code: CurrencyCode,
    meta: RequestMeta,
) -> Wallet:
    wallet = Wallet.open(user_id, code, clock())
    async with uow_factory() as uow:
        try:
            await uow.wallets.add(wallet)
        except Conflict:
            raise DomainError(
                ErrorCode.WALLET_EXISTS,
                f"You already have a {code.value} wallet.",
                ("input", "currency"),
            ) from None
        await uow.audit.record(
            audit(
                "wallet.opened",
                meta,
                actor_id=user_id,
                target_type="Wallet",
                target_id=wallet.id,
                currency=code.value,
            )
        )
        await uow.commit()
    return wallet
