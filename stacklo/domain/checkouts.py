"""Checkouts: a merchant asks for an amount, a customer pays it from a wallet, the merchant
refunds all or part of it. The states and money rules are in ``commerce.py``; every movement
goes through ``movements.book``.

Locks, in this order: the checkout row, then every account the movement touches in id order,
so two payers, a refund and a settlement run never deadlock, and a checkout is paid once
however many payers race (the others find it PAID).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from stacklo.domain.commerce import (
    Checkout,
    CheckoutStatus,
    Merchant,
    PaymentMethod,
    debit_in_order,
    fee_returned_after,
    merchant_fee,
)
from stacklo.domain.errors import Conflict, DomainError, ErrorCode
from stacklo.domain.installments import InstallmentProduct, Plan
from stacklo.domain.ledger import Posting, Transaction, TransactionKind, TransactionStatus
from stacklo.domain.models import AccountKind, RequestMeta, User, Wallet, audit
from stacklo.domain.money import MONEY_CONTEXT, Money, parse_amount
from stacklo.domain.movements import Idempotent, Movement, Sender, book
from stacklo.domain.outcomes import Outcome, claim_key, replay
from stacklo.domain.plans import Plans
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from stacklo.domain.validation import MAX_REASON, clean_text
from stacklo.domain.wallets import owned_wallet

MAX_DESCRIPTION = 500
MAX_REFERENCE = 64
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class CreateCheckout:
    user: User
    merchant: uuid.UUID
    amount: Decimal
    meta: RequestMeta
    description: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class PayCheckout:
    user: User
    checkout: uuid.UUID
    wallet: uuid.UUID
    method: PaymentMethod
    idempotency_key: str
    meta: RequestMeta
    product: InstallmentProduct | None = None

    def request(self) -> dict[str, object]:
        return {
            "checkout": str(self.checkout),
            "wallet": str(self.wallet),
            "method": self.method.value,
            "product": self.product.value if self.product else None,
        }


@dataclass(frozen=True, slots=True)
class RefundCheckout:
    """``as_staff``: the caller holds the staff right to refund any merchant's checkout (the
    resolver asks ``Visibility``); otherwise only the merchant's owner may."""

    user: User
    checkout: uuid.UUID
    reason: str
    idempotency_key: str
    meta: RequestMeta
    amount: Decimal | None = None
    as_staff: bool = False

    def request(self) -> dict[str, object]:
        return {
            "checkout": str(self.checkout),
            "amount": None if self.amount is None else str(self.amount),
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class Paid:
    """What payCheckout and refundCheckout answer: the checkout and the movement."""

    checkout: Checkout
    outcome: Outcome


NOT_FOUND = "Checkout not found."


class Checkouts:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        *,
        fee_bps: Decimal,
        ttl: timedelta,
        plans: Plans | None = None,
    ):
        self._uow = uow
        self._clock = clock
        self._fee_bps = fee_bps
        self._plans = plans
        self._ttl = ttl

    async def create(self, cmd: CreateCheckout) -> Checkout:
        description = _optional_text(cmd.description, "description", MAX_DESCRIPTION)
        reference = _optional_text(cmd.reference, "reference", MAX_REFERENCE)
        async with self._uow() as uow:
            merchant = await uow.merchants.get(cmd.merchant)
            if merchant is None or merchant.user_id != cmd.user.id:
                raise DomainError(
                    ErrorCode.NOT_FOUND, "Merchant not found.", ("input", "merchantId")
                )
            merchant.ensure_active(("input", "merchantId"))
            amount = parse_amount(cmd.amount, merchant.settlement_currency)
            now = self._clock()
            checkout = Checkout(
                uuid.uuid4(),
                merchant.id,
                merchant.settlement_currency,
                amount,
                CheckoutStatus.OPEN,
                now + self._ttl,
                now,
                description,
                reference,
            )
            try:
                await uow.checkouts.add(checkout)
            except Conflict:
                return await self._same_reference(uow, checkout, now)
            await uow.commit()
        return checkout

    @staticmethod
    async def _same_reference(uow: UnitOfWork, wanted: Checkout, now: datetime) -> Checkout:
        """A reference is the merchant's own order id: asking again for the same open
        checkout returns it; anything else under that reference is refused."""
        assert wanted.reference is not None
        first = await uow.checkouts.by_reference(wanted.merchant_id, wanted.reference)
        assert first is not None, "a reference conflict names a checkout"
        same = first.amount == wanted.amount and first.description == wanted.description
        if first.status_at(now) is CheckoutStatus.OPEN and same:
            return first
        raise DomainError(
            ErrorCode.INVALID_STATE,
            f"Reference {wanted.reference!r} is already used by a "
            f"{first.status_at(now).value} checkout"
            + ("" if same else " for another amount or description")
            + ".",
            ("input", "reference"),
        )

    async def pay(self, cmd: PayCheckout) -> Paid:
        if cmd.method is PaymentMethod.INSTALLMENTS and self._plans is None:
            raise DomainError(
                ErrorCode.INVALID_STATE,
                "Paying in installments is not available; pay with WALLET.",
                ("input", "method"),
            )
        async with self._uow() as uow:
            first = await claim_key(
                uow, cmd.user.id, cmd.idempotency_key, "payCheckout", cmd.request()
            )
            if first is not None:
                return await self._replayed(uow, cmd.checkout, first)
            now = self._clock()
            checkout = await uow.checkouts.get(cmd.checkout, for_update=True)
            if checkout is None:
                raise DomainError(ErrorCode.NOT_FOUND, NOT_FOUND, ("input", "checkoutId"))
            merchant = await _merchant(uow, checkout)
            if merchant.user_id == cmd.user.id:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    "A merchant cannot pay its own checkout.",
                    ("input", "checkoutId"),
                )
            status = checkout.status_at(now)
            if status is not CheckoutStatus.OPEN:
                raise DomainError(
                    ErrorCode.INVALID_STATE,
                    f"This checkout is {status.value} and cannot be paid.",
                    ("input", "checkoutId"),
                )
            merchant.ensure_active(("input", "checkoutId"))
            source = await owned_wallet(uow, cmd.user, cmd.wallet, "walletId")
            if source.currency is not checkout.currency:
                raise DomainError(
                    ErrorCode.CURRENCY_MISMATCH,
                    f"This checkout is in {checkout.currency.value}; the wallet holds "
                    f"{source.currency.value}.",
                    ("input", "walletId"),
                )
            plan = None
            if cmd.method is PaymentMethod.INSTALLMENTS:
                assert self._plans is not None
                fee = merchant_fee(checkout.money, self._fee_bps)
                movement, plan = await self._plans.finance(
                    uow,
                    cmd.user,
                    cmd.product,
                    checkout.id,
                    merchant.id,
                    checkout.money,
                    fee,
                    await uow.ledger.merchant_payable(merchant.id, checkout.currency),
                    source,
                    now,
                    cmd.meta,
                    cmd.idempotency_key,
                    checkout.description or merchant.name,
                )
            else:
                movement = await self._payment(uow, cmd, checkout, merchant, source, now)
            outcome = await book(uow, movement)
            if plan is not None:
                await uow.plans.add(plan, source.id)
            checkout.status = CheckoutStatus.PAID
            checkout.payment_method = cmd.method
            checkout.payer_id = cmd.user.id
            checkout.payment_transaction_id = outcome.transaction.id
            checkout.paid_at = now
            checkout.fee = outcome.transaction.fee
            await uow.checkouts.save(checkout)
            await uow.commit()
        return Paid(checkout, outcome)

    async def _payment(
        self,
        uow: UnitOfWork,
        cmd: PayCheckout,
        checkout: Checkout,
        merchant: Merchant,
        source: Wallet,
        now: datetime,
    ) -> Movement:
        amount = checkout.money
        fee = merchant_fee(amount, self._fee_bps)
        net = MONEY_CONTEXT.subtract(amount.amount, fee)
        payable = await uow.ledger.merchant_payable(merchant.id, checkout.currency)
        postings = [Posting(source.id, checkout.currency, MONEY_CONTEXT.minus(amount.amount))]
        if net:  # a sale all fee (one minor unit) leaves nothing for the payable
            postings.append(Posting(payable, checkout.currency, net))
        if fee:
            fees = await uow.ledger.platform_account(AccountKind.FEES, checkout.currency)
            postings.append(Posting(fees, checkout.currency, fee))
        tx = Transaction.start(
            TransactionKind.CHECKOUT_PAYMENT,
            amount,
            now,
            status=TransactionStatus.COMPLETED,
            fee=fee,
            initiator_id=cmd.user.id,
            source_wallet_id=source.id,
            target_wallet_id=payable,
            description=checkout.description or merchant.name,
            metadata={"checkout_id": str(checkout.id), "merchant_id": str(merchant.id)},
        )
        return Movement(
            tx,
            postings=postings,
            senders=[Sender(source.id, ("input", "walletId"))],
            audit=audit(
                "checkout.paid",
                cmd.meta,
                actor_id=cmd.user.id,
                target_type="Checkout",
                target_id=checkout.id,
                transaction=tx.reference,
                amount=str(amount.amount),
                currency=amount.currency.value,
                fee=str(fee),
            ),
            idempotent=Idempotent(cmd.user.id, cmd.idempotency_key),
        )

    async def refund(self, cmd: RefundCheckout) -> Paid:
        reason = clean_text(cmd.reason, ("input", "reason"), max_len=MAX_REASON)
        async with self._uow() as uow:
            first = await claim_key(
                uow, cmd.user.id, cmd.idempotency_key, "refundCheckout", cmd.request()
            )
            if first is not None:
                return await self._replayed(uow, cmd.checkout, first)
            now = self._clock()
            checkout = await uow.checkouts.get(cmd.checkout, for_update=True)
            merchant = await _merchant(uow, checkout) if checkout else None
            if (
                checkout is None
                or merchant is None
                or not (cmd.as_staff or merchant.user_id == cmd.user.id)
            ):
                raise DomainError(ErrorCode.NOT_FOUND, NOT_FOUND, ("input", "checkoutId"))
            status = checkout.status_at(now)
            if status is not CheckoutStatus.PAID:
                raise DomainError(
                    ErrorCode.INVALID_STATE,
                    f"This checkout is {status.value}: only a paid checkout can be refunded.",
                    ("input", "checkoutId"),
                )
            amount = (
                checkout.remaining
                if cmd.amount is None
                else parse_amount(cmd.amount, checkout.currency)
            )
            if amount > checkout.remaining:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    f"At most {checkout.remaining} {checkout.currency.value} of this checkout "
                    "can still be refunded.",
                    ("input", "amount"),
                )
            movement, from_payable, plan = await self._refund(
                uow, cmd, checkout, merchant, Money(amount, checkout.currency), reason, now
            )
            outcome = await book(uow, movement)
            fee_back = outcome.transaction.fee
            checkout.refunded = MONEY_CONTEXT.add(checkout.refunded, amount)
            checkout.fee_returned = MONEY_CONTEXT.add(checkout.fee_returned, fee_back)
            if from_payable:
                checkout.refunded_from_payable = MONEY_CONTEXT.add(
                    checkout.refunded_from_payable, MONEY_CONTEXT.subtract(amount, fee_back)
                )
            if checkout.refunded == checkout.amount:
                checkout.status = CheckoutStatus.REFUNDED
            await uow.checkouts.save(checkout)
            await uow.checkouts.add_refund(checkout.id, outcome.transaction.id)
            if plan is not None:
                await uow.plans.save(plan)
            await uow.commit()
        return Paid(checkout, outcome)

    async def _refund(
        self,
        uow: UnitOfWork,
        cmd: RefundCheckout,
        checkout: Checkout,
        merchant: Merchant,
        amount: Money,
        reason: str,
        now: datetime,
    ) -> tuple[Movement, bool, Plan | None]:
        code = checkout.currency
        fee_back = MONEY_CONTEXT.subtract(
            fee_returned_after(checkout, MONEY_CONTEXT.add(checkout.refunded, amount.amount)),
            checkout.fee_returned,
        )
        merchant_part = MONEY_CONTEXT.subtract(amount.amount, fee_back)
        assert checkout.payment_transaction_id is not None, "a paid checkout has its payment"
        payment = await uow.ledger.get(checkout.payment_transaction_id)
        assert payment is not None
        assert payment.source_wallet_id is not None
        payer_wallet = payment.source_wallet_id
        plan = (
            await uow.plans.for_checkout(checkout.id, for_update=True)
            if checkout.payment_method is PaymentMethod.INSTALLMENTS
            else None
        )
        if plan is None:
            customer = [Posting(payer_wallet, code, amount.amount)]
        else:  # financed: what is still owed shrinks first (plans.py)
            assert self._plans is not None
            full = MONEY_CONTEXT.add(checkout.refunded, amount.amount) == checkout.amount
            customer, _ = await self._plans.refund_postings(uow, plan, amount.amount, full, now)
        fees = await uow.ledger.platform_account(AccountKind.FEES, code) if fee_back else None
        from_payable = checkout.settled_at is None
        if from_payable:
            sources = await uow.ledger.merchant_payables(merchant.id, code)
        else:
            owner_wallet = await uow.wallets.for_user_currency(merchant.user_id, code)
            if owner_wallet is None:
                raise DomainError(
                    ErrorCode.INSUFFICIENT_FUNDS,
                    "This sale is settled and the merchant's wallet holds too little to refund.",
                    ("input", "amount"),
                )
            sources = [owner_wallet.id]
        # Lock every account now, in id order (book locks the same rows again: a no-op), so
        # the merchant's part is taken from balances no one else is changing.
        locked = await uow.ledger.lock_wallets(
            [*sources, *(p.wallet_id for p in customer), *([fees] if fees else [])]
        )
        merchant_side = debit_in_order(
            locked, sources, merchant_part, code, customer=not from_payable
        )
        postings = [*customer, *merchant_side]
        if fees is not None:
            postings.append(Posting(fees, code, MONEY_CONTEXT.minus(fee_back)))
        tx = Transaction.start(
            TransactionKind.REFUND,
            amount,
            now,
            status=TransactionStatus.COMPLETED,
            fee=fee_back,
            initiator_id=cmd.user.id,
            source_wallet_id=merchant_side[0].wallet_id if merchant_side else sources[0],
            target_wallet_id=payer_wallet,
            description=reason,
            metadata={
                "checkout_id": str(checkout.id),
                "merchant_id": str(merchant.id),
                "from": "payable" if from_payable else "merchant_wallet",
                **({"plan_id": str(plan.id)} if plan else {}),
            },
        )
        movement = Movement(
            tx,
            postings=postings,
            senders=[] if from_payable else [Sender(sources[0], ("input", "checkoutId"))],
            audit=audit(
                "checkout.refunded",
                cmd.meta,
                actor_id=cmd.user.id,
                target_type="Checkout",
                target_id=checkout.id,
                transaction=tx.reference,
                amount=str(amount.amount),
                fee_returned=str(fee_back),
                reason=reason,
                as_staff=cmd.as_staff,
            ),
            idempotent=Idempotent(cmd.user.id, cmd.idempotency_key),
        )
        return movement, from_payable, plan

    async def _replayed(
        self, uow: UnitOfWork, checkout_id: uuid.UUID, first: dict[str, Any]
    ) -> Paid:
        outcome = await replay(uow, first)
        checkout = await uow.checkouts.get(checkout_id)
        assert checkout is not None, "a replayed answer's checkout exists"
        return Paid(checkout, outcome)

    async def expire(self) -> int:
        """Write EXPIRED on open checkouts past their time (reads already say so)."""
        async with self._uow() as uow:
            count = await uow.checkouts.expire(self._clock())
            await uow.commit()
        return count

    async def get(self, checkout_id: uuid.UUID) -> Checkout | None:
        async with self._uow(read_only=True) as uow:
            return await uow.checkouts.get(checkout_id)


async def _merchant(uow: UnitOfWork, checkout: Checkout) -> Merchant:
    merchant = await uow.merchants.get(checkout.merchant_id)
    assert merchant is not None, "a checkout's merchant exists"
    return merchant


def _optional_text(value: str | None, name: str, max_len: int) -> str | None:
    if value is None:
        return None
    return clean_text(value, ("input", name), max_len=max_len, required=False) or None
