"""Merchants, checkouts, refunds and settlement on the use cases themselves (no HTTP; real
PostgreSQL), each scenario followed by the ledger verifier."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.checkouts import CreateCheckout, PayCheckout, RefundCheckout
from stacklo.domain.commerce import (
    Checkout,
    CheckoutStatus,
    Merchant,
    MerchantStatus,
    PaymentMethod,
)
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.ledger import TransactionKind
from stacklo.domain.merchants import RegisterMerchant, ReviewMerchant
from stacklo.domain.models import AccountKind, KycStatus, Role, User, Wallet
from stacklo.domain.transfers import Recipient, SendMoney
from tests.integration.world import META, NGN, USD, World


@pytest.fixture
def world(uow_factory: SqlUnitOfWorkFactory) -> World:
    return World(uow_factory)


async def refused(call: object) -> DomainError:
    with pytest.raises(DomainError) as e:
        await call  # type: ignore[misc]
    return e.value


async def admin(world: World) -> User:
    user, _ = await world.person(roles=(Role.ADMIN,))
    return user


async def active_merchant(world: World, currency: str = "NGN") -> tuple[User, Merchant]:
    owner, _ = await world.person()
    merchant = await world.merchants.register(
        RegisterMerchant(owner, "Ada's Shoes", "fashion", NGN if currency == "NGN" else USD, META)
    )
    reviewed = await world.merchants.review(
        ReviewMerchant(await admin(world), merchant.id, True, None, META)
    )
    return owner, reviewed


async def checkout(
    world: World, owner: User, merchant: Merchant, amount: str, **more: str
) -> Checkout:
    return await world.checkouts.create(
        CreateCheckout(owner, merchant.id, Decimal(amount), META, **more)  # type: ignore[arg-type]
    )


def pay(payer: User, wallet: Wallet, c: Checkout, key: str | None = None) -> PayCheckout:
    return PayCheckout(payer, c.id, wallet.id, PaymentMethod.WALLET, key or uuid.uuid4().hex, META)


def refund(
    user: User, c: Checkout, amount: str | None = None, key: str | None = None, staff: bool = False
) -> RefundCheckout:
    return RefundCheckout(
        user,
        c.id,
        "customer returned it",
        key or uuid.uuid4().hex,
        META,
        amount=Decimal(amount) if amount else None,
        as_staff=staff,
    )


async def payer_with(world: World, amount: str) -> tuple[User, Wallet]:
    user, wallet = await world.person()
    await world.deposit(user, wallet, amount)
    return user, wallet


async def payable(world: World, merchant: Merchant) -> Decimal:
    return (await world.merchants.pending_settlement(merchant)).amount


async def fees(world: World) -> Decimal:
    """What the platform's fee account holds, over all its shards."""
    async with world.uow.engine.connect() as conn:
        total = (
            await conn.execute(
                text("SELECT coalesce(sum(balance), 0) FROM wallets WHERE kind = :k"),
                {"k": AccountKind.FEES.value},
            )
        ).scalar()
    return Decimal(total)


# ----------------------------------------------------------------- the merchant life cycle


async def test_registering_needs_a_verified_identity_and_one_merchant_each(world: World) -> None:
    unverified, _ = await world.person(kyc=KycStatus.PENDING)
    error = await refused(
        world.merchants.register(RegisterMerchant(unverified, "Shop", "food", NGN, META))
    )
    assert error.code is ErrorCode.KYC_REQUIRED
    owner, _ = await world.person()
    first = await world.merchants.register(RegisterMerchant(owner, " Shop ", "food", NGN, META))
    assert (first.status, first.name) == (MerchantStatus.PENDING_REVIEW, "Shop")
    again = await refused(
        world.merchants.register(RegisterMerchant(owner, "Other", "food", USD, META))
    )
    assert again.code is ErrorCode.INVALID_STATE
    for name, category in (("x" * 101, "food"), ("Shop", ""), ("Sh\u0000op", "food")):
        bad = await refused(
            world.merchants.register(RegisterMerchant(owner, name, category, NGN, META))
        )
        assert bad.code is ErrorCode.INVALID_INPUT


async def test_review_approves_rejects_suspends_and_reactivates(world: World) -> None:
    staff = await admin(world)
    owner, _ = await world.person()
    merchant = await world.merchants.register(RegisterMerchant(owner, "Shop", "food", NGN, META))

    no_reason = await refused(
        world.merchants.review(ReviewMerchant(staff, merchant.id, False, None, META))
    )
    assert no_reason.code is ErrorCode.INVALID_INPUT
    active = await world.merchants.review(ReviewMerchant(staff, merchant.id, True, None, META))
    assert active.status is MerchantStatus.ACTIVE
    open_before = await checkout(world, owner, active, "5")
    async with world.uow(read_only=True) as uow:
        found = await uow.users.get(owner.id)
    assert found is not None and Role.MERCHANT in found.roles

    suspended = await world.merchants.review(
        ReviewMerchant(staff, merchant.id, False, "chargebacks", META)
    )
    assert (suspended.status, suspended.review_reason) == (MerchantStatus.SUSPENDED, "chargebacks")
    cannot = await refused(checkout(world, owner, merchant, "10"))
    assert cannot.code is ErrorCode.INVALID_STATE
    payer, wallet = await payer_with(world, "10")
    unpaid = await refused(world.checkouts.pay(pay(payer, wallet, open_before)))
    assert unpaid.code is ErrorCode.INVALID_STATE  # nor take payments on what was open
    again = await world.merchants.review(ReviewMerchant(staff, merchant.id, True, None, META))
    assert again.status is MerchantStatus.ACTIVE

    # Approving an active merchant is no transition; nobody reviews their own merchant.
    twice = await refused(
        world.merchants.review(ReviewMerchant(staff, merchant.id, True, None, META))
    )
    assert twice.code is ErrorCode.INVALID_STATE
    own = await world.merchants.register(RegisterMerchant(staff, "Staff shop", "x", NGN, META))
    self_review = await refused(
        world.merchants.review(ReviewMerchant(staff, own.id, True, None, META))
    )
    assert self_review.code is ErrorCode.INVALID_INPUT
    missing = await refused(
        world.merchants.review(ReviewMerchant(staff, uuid.uuid4(), True, None, META))
    )
    assert missing.code is ErrorCode.NOT_FOUND


async def test_a_rejected_merchant_stays_rejected(world: World) -> None:
    staff = await admin(world)
    owner, _ = await world.person()
    merchant = await world.merchants.register(RegisterMerchant(owner, "Shop", "food", NGN, META))
    rejected = await world.merchants.review(
        ReviewMerchant(staff, merchant.id, False, "not a real business", META)
    )
    assert rejected.status is MerchantStatus.REJECTED
    after = await refused(
        world.merchants.review(ReviewMerchant(staff, merchant.id, True, None, META))
    )
    assert after.code is ErrorCode.INVALID_STATE


# ----------------------------------------------------------------------------- checkouts


async def test_checkout_input_is_checked(world: World) -> None:
    owner, merchant = await active_merchant(world)
    for amount in ("0", "-1", "10.001", "1e20", "1" + "0" * 15):
        bad = await refused(checkout(world, owner, merchant, amount))
        assert bad.code is ErrorCode.INVALID_INPUT, amount
    for field, value in (
        ("description", "x" * 501),
        ("reference", "r" * 65),
        ("reference", "a\tb"),
    ):
        bad = await refused(checkout(world, owner, merchant, "10", **{field: value}))
        assert (bad.code, bad.field) == (ErrorCode.INVALID_INPUT, ("input", field))
    stranger, _ = await world.person()
    foreign = await refused(checkout(world, stranger, merchant, "10"))
    assert (foreign.code, foreign.message) == (ErrorCode.NOT_FOUND, "Merchant not found.")
    nobody = await refused(
        world.checkouts.create(CreateCheckout(owner, uuid.uuid4(), Decimal(10), META))
    )
    assert (nobody.code, nobody.message) == (ErrorCode.NOT_FOUND, "Merchant not found.")


async def test_the_same_reference_returns_the_open_checkout_and_nothing_else(world: World) -> None:
    owner, merchant = await active_merchant(world)
    first = await checkout(world, owner, merchant, "25.00", reference="order-1")
    again = await checkout(world, owner, merchant, "25", reference="order-1")
    assert again.id == first.id
    other_amount = await refused(checkout(world, owner, merchant, "26", reference="order-1"))
    assert (other_amount.code, other_amount.field) == (
        ErrorCode.INVALID_STATE,
        ("input", "reference"),
    )
    payer, wallet = await payer_with(world, "100")
    await world.checkouts.pay(pay(payer, wallet, first))
    paid = await refused(checkout(world, owner, merchant, "25", reference="order-1"))
    assert paid.code is ErrorCode.INVALID_STATE


async def test_paying_moves_the_amount_net_of_the_merchant_discount(world: World) -> None:
    owner, merchant = await active_merchant(world)
    c = await checkout(world, owner, merchant, "1000.00", description="Red shoes")
    payer, wallet = await payer_with(world, "1500")
    paid = await world.checkouts.pay(pay(payer, wallet, c))
    tx = paid.outcome.transaction
    assert (tx.kind, tx.amount, tx.fee) == (
        TransactionKind.CHECKOUT_PAYMENT,
        Decimal(1000),
        Decimal(15),
    )
    assert paid.checkout.status is CheckoutStatus.PAID
    assert paid.checkout.payment_method is PaymentMethod.WALLET
    assert await world.balance(wallet) == (Decimal(500), Decimal(0))
    assert await payable(world, merchant) == Decimal(985)
    assert await fees(world) == Decimal(15)
    await world.verified()


async def test_the_fee_rounds_up_and_a_tiny_sale_is_all_fee(world: World) -> None:
    owner, merchant = await active_merchant(world)
    payer, wallet = await payer_with(world, "10")
    odd = await world.checkouts.pay(
        pay(payer, wallet, await checkout(world, owner, merchant, "1.01"))
    )
    assert odd.outcome.transaction.fee == Decimal("0.02")  # 1.01 x 1.5% = 0.01515, up
    tiny = await world.checkouts.pay(
        pay(payer, wallet, await checkout(world, owner, merchant, "0.01"))
    )
    assert tiny.outcome.transaction.fee == Decimal("0.01")
    assert await payable(world, merchant) == Decimal("0.99")
    await world.verified()


async def test_what_cannot_be_paid(world: World) -> None:
    owner, merchant = await active_merchant(world)
    c = await checkout(world, owner, merchant, "10")
    async with world.uow(read_only=True) as uow:
        owner_wallet = await uow.wallets.for_user_currency(owner.id, NGN)
    assert owner_wallet is not None
    own = await refused(world.checkouts.pay(pay(owner, owner_wallet, c)))
    assert own.code is ErrorCode.INVALID_INPUT
    usd_payer, usd_wallet = await world.person(USD)
    mismatch = await refused(world.checkouts.pay(pay(usd_payer, usd_wallet, c)))
    assert mismatch.code is ErrorCode.CURRENCY_MISMATCH
    poor, poor_wallet = await world.person()
    broke = await refused(world.checkouts.pay(pay(poor, poor_wallet, c)))
    assert broke.code is ErrorCode.INSUFFICIENT_FUNDS
    stranger_payer, _ = await payer_with(world, "50")
    foreign_wallet = await refused(world.checkouts.pay(pay(stranger_payer, poor_wallet, c)))
    assert foreign_wallet.code is ErrorCode.NOT_FOUND
    unknown = PayCheckout(poor, uuid.uuid4(), poor_wallet.id, PaymentMethod.WALLET, "k", META)
    assert (await refused(world.checkouts.pay(unknown))).code is ErrorCode.NOT_FOUND
    unnamed = PayCheckout(poor, c.id, poor_wallet.id, PaymentMethod.INSTALLMENTS, "k2", META)
    assert (await refused(world.checkouts.pay(unnamed))).code is ErrorCode.INVALID_INPUT
    await world.verified()


async def test_expiry_is_exact_to_the_millisecond(world: World) -> None:
    owner, merchant = await active_merchant(world)
    payer, wallet = await payer_with(world, "100")
    early = await checkout(world, owner, merchant, "10")
    late = await checkout(world, owner, merchant, "10")
    assert early.expires_at == world.clock() + timedelta(seconds=1800)
    world.clock.now = early.expires_at - timedelta(milliseconds=1)
    assert (
        await world.checkouts.pay(pay(payer, wallet, early))
    ).checkout.status is CheckoutStatus.PAID
    world.clock.now = late.expires_at
    expired = await refused(world.checkouts.pay(pay(payer, wallet, late)))
    assert expired.code is ErrorCode.INVALID_STATE and "EXPIRED" in expired.message
    found = await world.checkouts.get(late.id)
    assert found is not None and found.status_at(world.clock()) is CheckoutStatus.EXPIRED
    assert await world.checkouts.expire() == 1  # the worker writes it down
    stored = await world.checkouts.get(late.id)
    assert stored is not None and stored.status is CheckoutStatus.EXPIRED
    await world.verified()


async def test_ten_payers_at_once_pay_once(world: World) -> None:
    owner, merchant = await active_merchant(world)
    c = await checkout(world, owner, merchant, "50")
    payers = [await payer_with(world, "100") for _ in range(10)]
    results = await asyncio.gather(
        *(world.checkouts.pay(pay(u, w, c)) for u, w in payers), return_exceptions=True
    )
    paid = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, DomainError)]
    assert len(paid) == 1 and len(losers) == 9
    assert all(e.code is ErrorCode.INVALID_STATE for e in losers)
    balances = [await world.balance(w) for _, w in payers]
    assert sorted(b for b, _ in balances) == [Decimal(50)] + [Decimal(100)] * 9
    assert await payable(world, merchant) == Decimal("49.25")
    await world.verified()


async def test_a_double_submit_with_one_key_moves_once(world: World) -> None:
    owner, merchant = await active_merchant(world)
    c = await checkout(world, owner, merchant, "20")
    payer, wallet = await payer_with(world, "100")
    cmd = pay(payer, wallet, c, key="same-key")
    first, second = await asyncio.gather(world.checkouts.pay(cmd), world.checkouts.pay(cmd))
    assert first.outcome.transaction.id == second.outcome.transaction.id
    assert await world.balance(wallet) == (Decimal(80), Decimal(0))
    third = await world.checkouts.pay(cmd)  # a later retry: the first answer again
    assert third.outcome.transaction.id == first.outcome.transaction.id
    assert third.checkout.status is CheckoutStatus.PAID
    await world.verified()


# ----------------------------------------------------------------------------- refunds


async def test_a_full_refund_gives_everything_back_and_the_whole_fee(world: World) -> None:
    owner, merchant = await active_merchant(world)
    payer, wallet = await payer_with(world, "1000")
    c = await checkout(world, owner, merchant, "1000")
    await world.checkouts.pay(pay(payer, wallet, c))
    back = await world.checkouts.refund(refund(owner, c))
    assert back.checkout.status is CheckoutStatus.REFUNDED
    assert (back.outcome.transaction.kind, back.outcome.transaction.fee) == (
        TransactionKind.REFUND,
        Decimal(15),
    )
    assert await world.balance(wallet) == (Decimal(1000), Decimal(0))
    assert await payable(world, merchant) == 0
    assert await fees(world) == 0
    again = await refused(world.checkouts.refund(refund(owner, c)))
    assert again.code is ErrorCode.INVALID_STATE
    await world.verified()


async def test_two_partial_refunds_then_one_over_what_remains(world: World) -> None:
    owner, merchant = await active_merchant(world)
    payer, wallet = await payer_with(world, "100")
    c = await checkout(world, owner, merchant, "100")
    await world.checkouts.pay(pay(payer, wallet, c))  # fee 1.50, payable 98.50
    one = await world.checkouts.refund(refund(owner, c, "30"))
    assert one.checkout.status is CheckoutStatus.PAID
    assert (one.checkout.refunded, one.outcome.transaction.fee) == (Decimal(30), Decimal("0.45"))
    two = await world.checkouts.refund(refund(owner, c, "33.33"))
    # down(1.50 x 63.33 / 100) = 0.94 returned so far: this refund returns 0.49.
    assert (two.checkout.refunded, two.outcome.transaction.fee) == (
        Decimal("63.33"),
        Decimal("0.49"),
    )
    assert await payable(world, merchant) == Decimal("98.50") - Decimal("29.55") - Decimal("32.84")

    before = (await world.balance(wallet), await payable(world, merchant), await fees(world))
    over = await refused(world.checkouts.refund(refund(owner, c, "36.68")))
    assert (over.code, over.field) == (ErrorCode.INVALID_INPUT, ("input", "amount"))
    after = (await world.balance(wallet), await payable(world, merchant), await fees(world))
    assert after == before  # nothing moved

    rest = await world.checkouts.refund(refund(owner, c))  # the remaining 36.67
    assert rest.checkout.status is CheckoutStatus.REFUNDED
    assert rest.checkout.fee_returned == Decimal("1.50")
    assert await world.balance(wallet) == (Decimal(100), Decimal(0))
    assert (await payable(world, merchant), await fees(world)) == (0, 0)
    await world.verified()


async def test_who_may_refund(world: World) -> None:
    owner, merchant = await active_merchant(world)
    payer, wallet = await payer_with(world, "50")
    c = await checkout(world, owner, merchant, "50")
    unpaid = await refused(world.checkouts.refund(refund(owner, c)))
    assert unpaid.code is ErrorCode.INVALID_STATE
    await world.checkouts.pay(pay(payer, wallet, c))
    stranger = await refused(world.checkouts.refund(refund(payer, c)))
    assert (stranger.code, stranger.message) == (ErrorCode.NOT_FOUND, "Checkout not found.")
    staff = await admin(world)
    by_staff = await world.checkouts.refund(refund(staff, c, "5", staff=True))
    assert by_staff.checkout.refunded == Decimal(5)
    await world.verified()


# --------------------------------------------------------------------------- settlement


async def test_settlement_moves_what_is_owed_after_the_delay_and_refunds_then_come_from_the_owner(
    world: World,
) -> None:
    owner, merchant = await active_merchant(world)
    payer, wallet = await payer_with(world, "500")
    sold = await checkout(world, owner, merchant, "200")
    await world.checkouts.pay(pay(payer, wallet, sold))  # 197 owed
    await world.checkouts.refund(refund(owner, sold, "20"))  # 19.70 back from the payable
    assert await world.settlement.run() == 0  # not a day old yet
    world.clock.advance(86_400 + 1)
    fresh = await checkout(world, owner, merchant, "100")
    await world.checkouts.pay(pay(payer, wallet, fresh))  # paid now: not settled this run

    assert await world.settlement.run() == 1
    async with world.uow(read_only=True) as uow:
        owner_wallet = await uow.wallets.for_user_currency(owner.id, NGN)
    assert owner_wallet is not None
    assert await world.balance(owner_wallet) == (Decimal("177.30"), Decimal(0))
    assert await payable(world, merchant) == Decimal("98.50")  # exactly the unsettled sale
    assert await world.settlement.run() == 0  # nothing more to settle
    await world.verified()

    # Settled: a refund now comes from the owner's wallet.
    back = await world.checkouts.refund(refund(owner, sold, "50"))
    assert back.outcome.transaction.fee == Decimal("0.75")
    assert await world.balance(owner_wallet) == (Decimal("128.05"), Decimal(0))
    assert await payable(world, merchant) == Decimal("98.50")
    await world.verified()

    # The rest (130, of which the merchant's part is 128.05) once the owner spent some of the
    # 128.05 left: more than the wallet holds, so refused, nothing moved.
    await world.transfers.send(
        SendMoney(owner, owner_wallet.id, Recipient(email=payer.email), Decimal(10), "spend", META)
    )
    before = (await world.balance(wallet), await world.balance(owner_wallet))
    short = await refused(world.checkouts.refund(refund(owner, sold, "130")))
    assert short.code is ErrorCode.INSUFFICIENT_FUNDS
    assert (await world.balance(wallet), await world.balance(owner_wallet)) == before
    await world.verified()


async def test_two_settlement_runs_at_once_settle_once(world: World) -> None:
    owner, merchant = await active_merchant(world)
    payer, wallet = await payer_with(world, "1000")
    for _ in range(5):
        await world.checkouts.pay(pay(payer, wallet, await checkout(world, owner, merchant, "100")))
    world.clock.advance(86_401)
    runs = await asyncio.gather(world.settlement.run(), world.settlement.run())
    assert sorted(runs) == [0, 1]
    async with world.uow(read_only=True) as uow:
        owner_wallet = await uow.wallets.for_user_currency(owner.id, NGN)
    assert owner_wallet is not None
    assert await world.balance(owner_wallet) == (Decimal("492.50"), Decimal(0))
    assert await payable(world, merchant) == 0
    await world.verified()


async def test_a_suspended_merchant_still_settles_and_sales_add_up(world: World) -> None:
    owner, merchant = await active_merchant(world)
    payer, wallet = await payer_with(world, "1000")
    t0 = world.clock()
    a = await checkout(world, owner, merchant, "300")
    await world.checkouts.pay(pay(payer, wallet, a))
    b = await checkout(world, owner, merchant, "200")
    await world.checkouts.pay(pay(payer, wallet, b))
    await world.checkouts.refund(refund(owner, b, "50"))
    await world.merchants.review(
        ReviewMerchant(await admin(world), merchant.id, False, "paused", META)
    )
    sales = await world.merchants.sales(merchant, t0, t0 + timedelta(hours=1))
    assert sales.checkout_count == 2
    assert (sales.gross.amount, sales.refunded.amount) == (Decimal(500), Decimal(50))
    assert sales.fees.amount == Decimal("6.75")  # 4.50 + 3.00, less 0.75 returned by the refund
    assert sales.net.amount == Decimal(500) - Decimal(50) - sales.fees.amount
    assert sales.installments.amount == 0
    assert await payable(world, merchant) == sales.net.amount  # nothing settled yet
    none = await world.merchants.sales(merchant, t0 + timedelta(hours=1), None)
    assert none.checkout_count == 0 and none.gross.amount == 0
    world.clock.advance(86_401)
    assert await world.settlement.run() == 1
    assert await payable(world, merchant) == 0
    await world.verified()
