"""Wallets as their owners and staff manage them: opening one, freezing one. Movements of
money are booked by ``domain/movements.py``."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from stacklo.domain.errors import Conflict, DomainError, ErrorCode
from stacklo.domain.models import AccountKind, RequestMeta, User, Wallet, WalletStatus, audit
from stacklo.domain.money import CurrencyCode
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from stacklo.domain.validation import MAX_REASON, clean_text


@dataclass(frozen=True, slots=True)
class OpenWallet:
    user: User
    currency: CurrencyCode
    meta: RequestMeta


@dataclass(frozen=True, slots=True)
class FreezeWallet:
    """Staff freeze (``frozen``) or unfreeze a customer wallet, saying why."""

    staff: User
    wallet: uuid.UUID
    frozen: bool
    reason: str
    meta: RequestMeta


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


async def owned_wallet(uow: UnitOfWork, user: User, wallet_id: uuid.UUID, field: str) -> Wallet:
    """The user's own wallet; anyone else's is NOT_FOUND, exactly like a missing one."""
    wallet = await uow.wallets.get(wallet_id)
    if wallet is None or wallet.user_id != user.id:
        raise DomainError(ErrorCode.NOT_FOUND, "Wallet not found.", ("input", field))
    return wallet


class Wallets:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock):
        self._uow = uow
        self._clock = clock

    async def open(self, cmd: OpenWallet) -> Wallet:
        async with self._uow() as uow:
            try:
                wallet = await add_wallet(uow, cmd.user.id, cmd.currency, self._clock(), cmd.meta)
            except Conflict:
                raise DomainError(
                    ErrorCode.WALLET_EXISTS,
                    f"You already have a {cmd.currency.value} wallet.",
                    ("input", "currency"),
                ) from None
            await uow.commit()
        return wallet

    async def freeze(self, cmd: FreezeWallet) -> Wallet:
        """A frozen wallet receives but cannot send or withdraw. Audited with the reason."""
        why = clean_text(cmd.reason, ("input", "reason"), max_len=MAX_REASON)
        async with self._uow() as uow:
            wallet = (await uow.ledger.lock_wallets([cmd.wallet])).get(cmd.wallet)
            if wallet is None or wallet.kind is not AccountKind.CUSTOMER:
                raise DomainError(ErrorCode.NOT_FOUND, "Wallet not found.", ("input", "walletId"))
            wallet.status = WalletStatus.FROZEN if cmd.frozen else WalletStatus.ACTIVE
            await uow.wallets.set_status(wallet)
            await uow.audit.record(
                audit(
                    "wallet.frozen" if cmd.frozen else "wallet.unfrozen",
                    cmd.meta,
                    actor_id=cmd.staff.id,
                    target_type="Wallet",
                    target_id=wallet.id,
                    reason=why,
                    owner_id=str(wallet.user_id),
                )
            )
            await uow.commit()
        return wallet
