"""Merchants: who may sell through Stacklo, the review that decides it (its transition table
is in ``commerce.py``), and what a merchant is owed and has sold.

A signed-in user with a verified identity registers one merchant (PENDING_REVIEW); staff with
the ``merchants review`` right decide, never on their own merchant; approval gives the owner
the MERCHANT role. Only an ACTIVE merchant creates checkouts and takes payments; what a
suspended merchant is owed still settles. Sales land on the merchant's payable account(s) in
its settlement currency (``AccountKind.MERCHANT_PAYABLE``, sharded), net of the merchant
discount; settlement moves them to the owner's wallet.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from stacklo.domain.commerce import Merchant, MerchantStatus, SalesSummary, reviewed
from stacklo.domain.errors import Conflict, DomainError, ErrorCode
from stacklo.domain.models import KycStatus, RequestMeta, Role, User, audit
from stacklo.domain.money import CurrencyCode, Money
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from stacklo.domain.validation import clean_text, review_reason

MAX_MERCHANT_NAME = 100
MAX_CATEGORY = 60


@dataclass(frozen=True, slots=True)
class RegisterMerchant:
    user: User
    name: str
    category: str
    settlement_currency: CurrencyCode
    meta: RequestMeta


@dataclass(frozen=True, slots=True)
class ReviewMerchant:
    staff: User
    merchant: uuid.UUID
    approve: bool
    reason: str | None
    meta: RequestMeta


class Merchants:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock):
        self._uow = uow
        self._clock = clock

    async def register(self, cmd: RegisterMerchant) -> Merchant:
        name = clean_text(cmd.name, ("input", "name"), max_len=MAX_MERCHANT_NAME)
        category = clean_text(cmd.category, ("input", "category"), max_len=MAX_CATEGORY)
        if cmd.user.kyc_status is not KycStatus.VERIFIED:
            raise DomainError(
                ErrorCode.KYC_REQUIRED, "Registering a merchant needs a verified identity."
            )
        merchant = Merchant(
            uuid.uuid4(),
            cmd.user.id,
            name,
            category,
            cmd.settlement_currency,
            MerchantStatus.PENDING_REVIEW,
            self._clock(),
        )
        async with self._uow() as uow:
            try:
                await uow.merchants.add(merchant)
            except Conflict:
                raise DomainError(ErrorCode.INVALID_STATE, "You already have a merchant.") from None
            await uow.audit.record(
                audit(
                    "merchant.registered",
                    cmd.meta,
                    actor_id=cmd.user.id,
                    target_type="Merchant",
                    target_id=merchant.id,
                    currency=merchant.settlement_currency.value,
                )
            )
            await uow.commit()
        return merchant

    async def review(self, cmd: ReviewMerchant) -> Merchant:
        reason = review_reason(cmd.reason, cmd.approve, "Say why the merchant is refused.")
        async with self._uow() as uow:
            merchant = await uow.merchants.get(cmd.merchant, for_update=True)
            if merchant is None:
                raise DomainError(
                    ErrorCode.NOT_FOUND, "Merchant not found.", ("input", "merchantId")
                )
            if merchant.user_id == cmd.staff.id:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    "Staff cannot review their own merchant.",
                    ("input", "merchantId"),
                )
            previous = merchant.status
            merchant.status = reviewed(previous, cmd.approve)
            merchant.review_reason = reason
            await uow.merchants.save(merchant)
            if merchant.status is MerchantStatus.ACTIVE:
                await _grant_merchant_role(uow, merchant.user_id)
            await uow.outbox.notify(
                merchant.user_id,
                {
                    MerchantStatus.ACTIVE: "merchant.approved",
                    MerchantStatus.REJECTED: "merchant.rejected",
                    MerchantStatus.SUSPENDED: "merchant.suspended",
                }[merchant.status],
                {"merchant": merchant.name, "reason": reason or ""},
            )
            await uow.audit.record(
                audit(
                    "merchant.reviewed",
                    cmd.meta,
                    actor_id=cmd.staff.id,
                    target_type="Merchant",
                    target_id=merchant.id,
                    previous=previous.value,
                    status=merchant.status.value,
                    reason=reason,
                )
            )
            await uow.commit()
        return merchant

    async def pending_settlement(self, merchant: Merchant) -> Money:
        """Exactly the balance of the merchant's payable account(s)."""
        async with self._uow(read_only=True) as uow:
            total = await uow.merchants.payable_balance(merchant.id)
        return Money(total, merchant.settlement_currency).quantized()

    async def sales(
        self, merchant: Merchant, start: datetime | None, end: datetime | None
    ) -> SalesSummary:
        if start is not None and end is not None and end < start:
            raise DomainError(ErrorCode.INVALID_INPUT, "to is before from.", ("to",))
        async with self._uow(read_only=True) as uow:
            return await uow.merchants.sales(merchant, start, end)


async def _grant_merchant_role(uow: UnitOfWork, user_id: uuid.UUID) -> None:
    owner = await uow.users.get(user_id)
    if owner is not None and Role.MERCHANT not in owner.roles:
        await uow.users.set_roles(user_id, [*owner.roles, Role.MERCHANT])
