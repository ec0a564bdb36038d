"""Merchants and checkouts as clients see them, with the inputs and payloads of their
mutations.

Who sees what (``domain/visibility.py`` decides): a merchant's own books (pendingSettlement,
checkouts, salesSummary, reviewReason) are its owner's and staff's; anyone signed in who holds a
checkout's id sees the checkout and its merchant's public face (name, category), as a payer
must; a checkout's merchant-side reference and its refunds are the owner's, staff's and (for
refunds) the payer's.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated

import strawberry
from strawberry import relay

from stacklo.domain import commerce
from stacklo.domain import installments as bnpl
from stacklo.domain.commerce import CheckoutStatus, MerchantStatus, PaymentMethod
from stacklo.domain.errors import Forbidden
from stacklo.domain.money import Money
from stacklo.schema import docs
from stacklo.schema.common import (
    AFTER,
    AMOUNT,
    FIRST,
    IDEMPOTENCY_KEY,
    USER_ERRORS,
    Connection,
    CurrencyCode,
    MoneyType,
    UserError,
    decode_time_cursor,
    encode_cursor,
)
from stacklo.schema.context import Info
from stacklo.schema.ledger import Transaction, first_arg
from stacklo.schema.limits import cost, cursors

docs.described_enum(
    MerchantStatus,
    "Where a merchant stands with the platform; only ACTIVE merchants take payments.",
    docs.MERCHANT_STATUSES,
    name="MerchantStatus",
)
docs.described_enum(
    CheckoutStatus,
    "Where a checkout stands. OPEN turns EXPIRED at expiresAt exactly, whether or not anything "
    "ran then.",
    docs.CHECKOUT_STATUSES,
    name="CheckoutStatus",
)
docs.described_enum(
    PaymentMethod, "How a checkout is paid.", docs.PAYMENT_METHODS, name="PaymentMethod"
)

_BOOKS = "The merchant's owner and staff only; anyone else gets FORBIDDEN."


async def _books(info: Info, merchant: commerce.Merchant) -> None:
    viewer = await info.context.require_viewer()
    if not info.context.services.visibility.merchant(viewer, merchant):
        raise Forbidden("Only the merchant's owner and staff see this.")


@strawberry.type(
    description="A business that sells through Stacklo. Its name, category and status are seen "
    "by whoever can see one of its checkouts; its books by its owner and staff."
)
class Merchant(relay.Node):
    id: relay.NodeID[str]
    name: str = strawberry.field(description="The name payers see, 1 to 100 characters.")
    category: str = strawberry.field(description="What it sells, 1 to 60 characters.")
    status: MerchantStatus = strawberry.field(
        description="Only ACTIVE merchants create checkouts and take payments."
    )
    settlement_currency: CurrencyCode = strawberry.field(
        description="The currency of its checkouts, payable and settlements."
    )
    created_at: datetime = strawberry.field(description="When it registered.")
    _merchant: strawberry.Private[commerce.Merchant]

    @classmethod
    def of(cls, m: commerce.Merchant) -> Merchant:
        return cls(
            id=str(m.id),
            name=m.name,
            category=m.category,
            status=m.status,
            settlement_currency=m.settlement_currency,
            created_at=m.created_at,
            _merchant=m,
        )

    @strawberry.field(description="Why staff refused or suspended it; null otherwise. " + _BOOKS)
    async def review_reason(self, info: Info) -> str | None:
        await _books(info, self._merchant)
        return self._merchant.review_reason

    @strawberry.field(
        description="Sales not yet settled to the merchant's wallet: exactly the balance of its "
        "payable (sales less the merchant discount and less refunds taken from it, until they "
        "are settled a day after payment, by default). " + _BOOKS
    )
    async def pending_settlement(self, info: Info) -> MoneyType:
        await _books(info, self._merchant)
        return MoneyType.of(
            await info.context.services.merchants.pending_settlement(self._merchant)
        )

    @strawberry.field(
        description="Its checkouts, newest first. " + _BOOKS,
        metadata=cursors(decode_time_cursor),
    )
    async def checkouts(
        self,
        info: Info,
        first: Annotated[int | None, FIRST] = None,
        after: Annotated[str | None, AFTER] = None,
        status: Annotated[
            CheckoutStatus | None,
            strawberry.argument(description="Only checkouts in this status (as read now)."),
        ] = None,
    ) -> Connection[Checkout]:
        await _books(info, self._merchant)
        # Its checkouts look their merchant up to decide who sees their merchant-side fields:
        # it is this one, already read.
        info.context.loaders.merchants.prime(self._merchant.id, self._merchant)
        services = info.context.services
        async with services.uow(read_only=True) as uow:
            page = await uow.checkouts.page(
                self._merchant.id,
                first=first_arg(info, first),
                after=decode_time_cursor(after),
                status=status,
                now=services.clock(),
            )
        return Connection[Checkout].build(
            [(encode_cursor(c.created_at.isoformat(), c.id), Checkout.of(c)) for c in page.items],
            has_next=page.has_next,
            has_previous=after is not None,
        )

    @strawberry.field(
        description="Its sales paid in [from, to) (either bound open when null), exact and "
        "reconciled with the ledger. INVALID_INPUT when to is before from. " + _BOOKS
    )
    async def sales_summary(
        self,
        info: Info,
        from_: Annotated[
            datetime | None,
            strawberry.argument(
                name="from", description="Paid at or after this; any time if null."
            ),
        ] = None,
        to: Annotated[
            datetime | None,
            strawberry.argument(description="Paid before this; up to now if null."),
        ] = None,
    ) -> MerchantSalesSummary:
        await _books(info, self._merchant)
        found = await info.context.services.merchants.sales(self._merchant, from_, to)
        return MerchantSalesSummary.of(found)


@strawberry.type(
    description="A merchant's sales over a window, counted by when they were paid. "
    "netVolume = grossVolume - refundedVolume - fees."
)
class MerchantSalesSummary:
    checkout_count: int = strawberry.field(description="Checkouts paid in the window.")
    gross_volume: MoneyType = strawberry.field(description="What those checkouts were paid.")
    refunded_volume: MoneyType = strawberry.field(
        description="What of them was refunded since (at any time)."
    )
    fees: MoneyType = strawberry.field(
        description="The merchant discount kept by the platform on them: fees charged less the "
        "part refunds returned."
    )
    net_volume: MoneyType = strawberry.field(
        description="What the merchant keeps of them: gross less refunds less fees."
    )
    installment_volume: MoneyType = strawberry.field(
        description="What of grossVolume was paid in installments (the merchant was paid in "
        "full all the same)."
    )

    @classmethod
    def of(cls, s: commerce.SalesSummary) -> MerchantSalesSummary:
        return cls(
            checkout_count=s.checkout_count,
            gross_volume=MoneyType.of(s.gross),
            refunded_volume=MoneyType.of(s.refunded),
            fees=MoneyType.of(s.fees),
            net_volume=MoneyType.of(s.net),
            installment_volume=MoneyType.of(s.installments),
        )


@strawberry.type(
    description="A request for payment by a merchant. Any signed-in user holding its id sees "
    "it (the payer needs to); the merchant-side fields say who else sees them."
)
class Checkout(relay.Node):
    id: relay.NodeID[str]
    description: str | None = strawberry.field(
        description="What is being paid for, as the merchant wrote it; null without one."
    )
    payment_method: PaymentMethod | None = strawberry.field(
        description="How it was paid; null until it is."
    )
    expires_at: datetime = strawberry.field(
        description="From this instant an OPEN checkout is EXPIRED and cannot be paid."
    )
    created_at: datetime = strawberry.field(description="When the merchant created it.")
    paid_at: datetime | None = strawberry.field(description="When it was paid; null until then.")
    _checkout: strawberry.Private[commerce.Checkout]

    @classmethod
    def of(cls, c: commerce.Checkout) -> Checkout:
        return cls(
            id=str(c.id),
            description=c.description,
            payment_method=c.payment_method,
            expires_at=c.expires_at,
            created_at=c.created_at,
            paid_at=c.paid_at,
            _checkout=c,
        )

    @strawberry.field(description="Who is asking to be paid.")
    async def merchant(self, info: Info) -> Merchant:
        found = await info.context.loaders.merchants.load(self._checkout.merchant_id)
        assert found is not None, "a checkout's merchant exists"
        return Merchant.of(found)

    @strawberry.field(description="What is asked, in the merchant's settlement currency.")
    def amount(self) -> MoneyType:
        return MoneyType.of(self._checkout.money)

    @strawberry.field(description="Where it stands now (EXPIRED from expiresAt on).")
    def status(self, info: Info) -> CheckoutStatus:
        return self._checkout.status_at(info.context.services.clock())

    @strawberry.field(
        description="The merchant's own order reference (unique per merchant); null without "
        "one, and for anyone but the merchant's owner and staff."
    )
    async def reference(self, info: Info) -> str | None:
        return self._checkout.reference if await self._merchant_side(info) else None

    @strawberry.field(
        description="What has been refunded of it so far; zero until a refund. Equal to "
        "amount once REFUNDED."
    )
    def refunded_amount(self) -> MoneyType:
        c = self._checkout
        return MoneyType.of(Money(c.refunded, c.currency))

    @strawberry.field(
        description="The CHECKOUT_PAYMENT transaction; null until paid, and for anyone but the "
        "payer, the merchant's owner and staff."
    )
    async def payment(self, info: Info) -> Transaction | None:
        tx_id = self._checkout.payment_transaction_id
        if tx_id is None or not await self._payer_side(info):
            return None
        tx = await info.context.loaders.transactions.load(tx_id)
        return Transaction.of(tx) if tx else None

    @strawberry.field(
        metadata=cost(size=10),
        description="Its REFUND transactions, oldest first; empty for anyone but the payer, "
        "the merchant's owner and staff.",
    )
    async def refunds(self, info: Info) -> list[Transaction]:
        if not await self._payer_side(info):
            return []
        ids = await info.context.loaders.checkout_refunds.load(self._checkout.id)
        found = await info.context.loaders.transactions.load_many(ids)  # one batch, not one each
        return [Transaction.of(t) for t in found if t is not None]

    @strawberry.field(
        description="The installment plan paying it; null unless it was paid with INSTALLMENTS, "
        "and for anyone but the payer, the merchant's owner and staff."
    )
    async def installment_plan(self, info: Info) -> InstallmentPlan | None:
        if self._checkout.payment_method is not PaymentMethod.INSTALLMENTS:
            return None
        if not await self._payer_side(info):
            return None
        found = await info.context.loaders.plan_of_checkout.load(self._checkout.id)
        return InstallmentPlan.of(found) if found else None

    @strawberry.field(
        metadata=cost(size=3),
        description="Installment plans the viewer could pay this checkout with now: empty "
        "unless it is OPEN and the viewer has APPROVED credit in its currency covering its "
        "amount (availableCredit), and only products within the amounts offered.",
    )
    async def installment_offers(self, info: Info) -> list[InstallmentOffer]:
        services = info.context.services
        if self._checkout.status_at(services.clock()) is not CheckoutStatus.OPEN:
            return []
        viewer = await info.context.viewer()
        found = await services.plans.offers(viewer.user if viewer else None, self._checkout.money)
        return [InstallmentOffer.of(o) for o in found]

    async def _merchant_side(self, info: Info) -> bool:
        viewer = await info.context.viewer()
        merchant = await info.context.loaders.merchants.load(self._checkout.merchant_id)
        return merchant is not None and info.context.services.visibility.merchant(viewer, merchant)

    async def _payer_side(self, info: Info) -> bool:
        viewer = await info.context.viewer()
        if viewer is not None and viewer.user.id == self._checkout.payer_id:
            return True
        return await self._merchant_side(info)


# ------------------------------------------------------------------------- installments

docs.described_enum(
    bnpl.InstallmentProduct,
    "The installment plans a checkout can be paid with.",
    docs.INSTALLMENT_PRODUCTS,
    name="InstallmentProduct",
)
docs.described_enum(
    bnpl.PlanStatus,
    "Where an installment plan stands.",
    docs.PLAN_STATUSES,
    name="InstallmentPlanStatus",
)
docs.described_enum(
    bnpl.InstallmentStatus,
    "Where one installment stands.",
    docs.INSTALLMENT_STATUSES,
    name="InstallmentStatus",
)


@strawberry.type(
    description="A plan the viewer could pay a checkout with now: equal payments (the "
    "remainder on the last), the first at checkout."
)
class InstallmentOffer:
    product: bnpl.InstallmentProduct = strawberry.field(description="Which plan.")
    installment_count: int = strawberry.field(description="Payments in all, the first included.")
    down_payment: MoneyType = strawberry.field(description="Paid at checkout.")
    installment_amount: MoneyType = strawberry.field(
        description="Each later payment (the last may be a little more: the remainder)."
    )
    interval_days: int = strawberry.field(
        description="Days between payments: 14, or 30 for monthly plans (which keep the day "
        "of the month)."
    )
    fee: MoneyType = strawberry.field(
        description="The finance fee, spread over the payments; zero when there is none."
    )
    total_repayable: MoneyType = strawberry.field(description="Every payment, fee included.")

    @classmethod
    def of(cls, o: bnpl.Offer) -> InstallmentOffer:
        return cls(
            product=o.product,
            installment_count=o.count,
            down_payment=MoneyType.of(o.down_payment),
            installment_amount=MoneyType.of(o.installment_amount),
            interval_days=o.interval_days,
            fee=MoneyType.of(o.fee),
            total_repayable=MoneyType.of(o.total),
        )


@strawberry.type(description="One payment of an installment plan. Its borrower's and staff's.")
class Installment(relay.Node):
    id: relay.NodeID[str]
    sequence: int = strawberry.field(description="1 for the payment made at checkout.")
    due_date: date = strawberry.field(description="The day it is due (UTC calendar).")
    status: bnpl.InstallmentStatus = strawberry.field(description="Where it stands.")
    paid_at: datetime | None = strawberry.field(description="When it was paid in full.")
    _inst: strawberry.Private[bnpl.Installment]
    _currency: strawberry.Private[CurrencyCode]

    @classmethod
    def of(cls, i: bnpl.Installment, currency: CurrencyCode) -> Installment:
        return cls(
            id=str(i.id),
            sequence=i.sequence,
            due_date=i.due_date,
            status=i.status,
            paid_at=i.paid_at,
            _inst=i,
            _currency=currency,
        )

    @strawberry.field(description="What is due: principal plus its share of the finance fee.")
    def amount(self) -> MoneyType:
        return MoneyType.of(Money(self._inst.amount, self._currency))

    @strawberry.field(
        description="Charged when it turned OVERDUE (grace days after its due date); zero "
        "otherwise. Paid before anything else of it."
    )
    def late_fee(self) -> MoneyType:
        return MoneyType.of(Money(self._inst.late_fee, self._currency))

    @strawberry.field(description="Paid of it so far, late fee included.")
    def paid_amount(self) -> MoneyType:
        return MoneyType.of(Money(self._inst.paid, self._currency))


@strawberry.type(
    description="A checkout paid over time: the merchant was paid in full at checkout; the "
    "borrower repays the platform. Its borrower's and staff's."
)
class InstallmentPlan(relay.Node):
    id: relay.NodeID[str]
    product: bnpl.InstallmentProduct = strawberry.field(description="Which plan.")
    status: bnpl.PlanStatus = strawberry.field(description="Where it stands.")
    created_at: datetime = strawberry.field(description="When the checkout was paid.")
    completed_at: datetime | None = strawberry.field(
        description="When it was repaid in full or cancelled; null while it runs."
    )
    _plan: strawberry.Private[bnpl.Plan]

    @classmethod
    def of(cls, p: bnpl.Plan) -> InstallmentPlan:
        return cls(
            id=str(p.id),
            product=p.product,
            status=p.status,
            created_at=p.created_at,
            completed_at=p.completed_at,
            _plan=p,
        )

    def _money(self, value: Decimal) -> MoneyType:
        return MoneyType.of(Money(value, self._plan.currency))

    @strawberry.field(description="Who was paid.")
    async def merchant(self, info: Info) -> Merchant:
        found = await info.context.loaders.merchants.load(self._plan.merchant_id)
        assert found is not None
        return Merchant.of(found)

    @strawberry.field(description="What was bought.")
    async def checkout(self, info: Info) -> Checkout:
        found = await info.context.loaders.checkouts.load(self._plan.checkout_id)
        assert found is not None
        return Checkout.of(found)

    @strawberry.field(
        description="What is financed: the checkout's amount, less what refunds forgave."
    )
    def principal(self) -> MoneyType:
        return self._money(self._plan.principal)

    @strawberry.field(description="The finance fee (PAY_IN_6_MONTHLY); zero otherwise.")
    def fee(self) -> MoneyType:
        return self._money(self._plan.fee)

    @strawberry.field(description="Principal plus fee: every payment together.")
    def total_repayable(self) -> MoneyType:
        return self._money(self._plan.total)

    @strawberry.field(
        description="Still to pay: principal, fees and late fees; prepayPlan without an "
        "amount pays exactly this."
    )
    def outstanding(self) -> MoneyType:
        return self._money(self._plan.outstanding)

    @strawberry.field(description="Late fees charged so far, paid or not.")
    def late_fees_charged(self) -> MoneyType:
        return self._money(self._plan.late_fees_charged)

    @strawberry.field(metadata=cost(size=6), description="Every payment, in order.")
    def installments(self) -> list[Installment]:
        return [Installment.of(i, self._plan.currency) for i in self._plan.installments]

    @strawberry.field(description="The next payment to make; null when nothing is owed.")
    def next_installment(self) -> Installment | None:
        found = self._plan.next_installment()
        return Installment.of(found, self._plan.currency) if found else None


# ------------------------------------------------------------------------------- inputs


@strawberry.input(description="The merchant to register.")
class RegisterMerchantInput:
    name: str = strawberry.field(
        description="The name payers see: 1 to 100 characters, no control characters "
        "(INVALID_INPUT otherwise)."
    )
    category: str = strawberry.field(
        description="What it sells, e.g. fashion: 1 to 60 characters, no control characters."
    )
    settlement_currency: CurrencyCode = strawberry.field(
        default=CurrencyCode.NGN,
        description="The currency its checkouts ask for and its sales settle in.",
    )


@strawberry.input(description="A staff decision on a merchant.")
class ReviewMerchantInput:
    merchant_id: strawberry.ID = strawberry.field(
        description="The merchant (a Merchant global ID; NOT_FOUND otherwise)."
    )
    approve: bool = strawberry.field(
        description="true: PENDING_REVIEW or SUSPENDED becomes ACTIVE. false: PENDING_REVIEW "
        "becomes REJECTED, ACTIVE becomes SUSPENDED. Anything else is INVALID_STATE."
    )
    reason: str | None = strawberry.field(
        default=None,
        description="Why; required when approve is false (INVALID_INPUT), at most 500 characters.",
    )


@strawberry.input(description="A request for payment.")
class CreateCheckoutInput:
    merchant_id: strawberry.ID = strawberry.field(
        description="The viewer's own ACTIVE merchant (NOT_FOUND for any other; INVALID_STATE "
        "unless ACTIVE)."
    )
    amount: Decimal = strawberry.field(
        description="What to ask for, in the merchant's settlement currency. " + AMOUNT
    )
    description: str | None = strawberry.field(
        default=None, description="What is being paid for: at most 500 characters."
    )
    reference: str | None = strawberry.field(
        default=None,
        description="The merchant's own order id, at most 64 characters, unique per merchant. "
        "Asking again with the same reference, amount and description while the first is OPEN "
        "answers with the first; anything else under that reference is INVALID_STATE.",
    )


@strawberry.input(description="Paying a checkout.")
class PayCheckoutInput:
    checkout_id: strawberry.ID = strawberry.field(
        description="The checkout (a Checkout global ID; NOT_FOUND otherwise): OPEN (else "
        "INVALID_STATE), of an ACTIVE merchant, not the viewer's own merchant's (INVALID_INPUT)."
    )
    wallet_id: strawberry.ID = strawberry.field(
        description="The viewer's wallet to pay from (NOT_FOUND otherwise), in the checkout's "
        "currency (CURRENCY_MISMATCH), not frozen (WALLET_FROZEN), holding enough "
        "(INSUFFICIENT_FUNDS)."
    )
    method: PaymentMethod = strawberry.field(
        description="WALLET, or INSTALLMENTS with a product (needs APPROVED credit: "
        "CREDIT_DECLINED, CREDIT_LIMIT_EXCEEDED over availableCredit)."
    )
    product: bnpl.InstallmentProduct | None = strawberry.field(
        default=None,
        description="Which installment plan; required with INSTALLMENTS "
        "(INVALID_INPUT), ignored otherwise.",
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)


@strawberry.input(description="Giving a paid checkout's money back, all of it or part.")
class RefundCheckoutInput:
    checkout_id: strawberry.ID = strawberry.field(
        description="A PAID checkout of the viewer's merchant (any merchant's for staff with "
        "the right); NOT_FOUND otherwise, INVALID_STATE unless PAID."
    )
    reason: str = strawberry.field(
        description="Why, for the payer and the audit log: 1 to 500 characters."
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)
    amount: Decimal | None = strawberry.field(
        default=None,
        description="How much to give back; everything not yet refunded when null. At most "
        "what remains (INVALID_INPUT otherwise). " + AMOUNT,
    )


# ----------------------------------------------------------------------------- payloads


@strawberry.type(description="The answer to registerMerchant.")
class RegisterMerchantPayload:
    merchant: Merchant | None = strawberry.field(
        default=None, description="The new merchant, PENDING_REVIEW; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The answer to reviewMerchant.")
class ReviewMerchantPayload:
    merchant: Merchant | None = strawberry.field(
        default=None, description="The merchant after the decision; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The answer to createCheckout.")
class CreateCheckoutPayload:
    checkout: Checkout | None = strawberry.field(
        default=None, description="The OPEN checkout; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The answer to payCheckout.")
class PayCheckoutPayload:
    checkout: Checkout | None = strawberry.field(
        default=None, description="The PAID checkout; null when refused."
    )
    transaction: Transaction | None = strawberry.field(
        default=None, description="The CHECKOUT_PAYMENT; null when refused."
    )
    installment_plan: InstallmentPlan | None = strawberry.field(
        default=None, description="Null: installments are not available yet."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.type(description="The answer to refundCheckout.")
class RefundCheckoutPayload:
    checkout: Checkout | None = strawberry.field(
        default=None,
        description="The checkout after the refund: PAID with a larger refundedAmount, or "
        "REFUNDED; null when refused.",
    )
    transaction: Transaction | None = strawberry.field(
        default=None, description="The REFUND; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)
