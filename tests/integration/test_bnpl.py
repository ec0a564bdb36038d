"""Buy now, pay later through time: each product's life on the use cases (no HTTP; real
PostgreSQL; the world's clock moves days at a time), each scenario followed by the ledger
verifier."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.checkouts import CreateCheckout, PayCheckout, RefundCheckout
from stacklo.domain.commerce import Checkout, CheckoutStatus, Merchant, PaymentMethod
from stacklo.domain.credit import CreditStatus, EmploymentStatus
from stacklo.domain.credit_applications import ApplyForCredit
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.installments import InstallmentProduct, InstallmentStatus, Plan, PlanStatus
from stacklo.domain.merchants import RegisterMerchant, ReviewMerchant
from stacklo.domain.models import AccountKind, KycStatus, Role, User, Wallet
from stacklo.domain.plans import Prepay, Repay
from tests.integration.world import META, NGN, USD, World

P4 = InstallmentProduct.PAY_IN_4
P3 = InstallmentProduct.PAY_IN_3_MONTHLY
P6 = InstallmentProduct.PAY_IN_6_MONTHLY


@pytest.fixture
def world(uow_factory: SqlUnitOfWorkFactory) -> World:
    return World(uow_factory)


async def refused(call: object) -> DomainError:
    with pytest.raises(DomainError) as e:
        await call  # type: ignore[misc]
    return e.value


async def shop(world: World) -> tuple[User, Merchant]:
    owner, _ = await world.person()
    staff, _ = await world.person(roles=(Role.ADMIN,))
    merchant = await world.merchants.register(
        RegisterMerchant(owner, "Shoes", "fashion", NGN, META)
    )
    return owner, await world.merchants.review(ReviewMerchant(staff, merchant.id, True, None, META))


async def buyer(world: World, cash: str = "0", limit: str = "100000") -> tuple[User, Wallet]:
    user, wallet = await world.person()
    if Decimal(cash):
        await world.deposit(user, wallet, cash)
    await world.approve_credit(user, limit)
    return user, wallet


async def financed(
    world: World, product: InstallmentProduct = P4, amount: str = "1000", cash: str = "250"
) -> tuple[User, Wallet, Merchant, Checkout, Plan]:
    owner, merchant = await shop(world)
    user, wallet = await buyer(world, cash)
    c = await world.checkouts.create(CreateCheckout(owner, merchant.id, Decimal(amount), META))
    paid = await world.checkouts.pay(
        PayCheckout(
            user, c.id, wallet.id, PaymentMethod.INSTALLMENTS, uuid.uuid4().hex, META, product
        )
    )
    async with world.uow(read_only=True) as uow:
        plan = await uow.plans.for_checkout(c.id)
    assert plan is not None
    return user, wallet, merchant, paid.checkout, plan


async def plan_now(world: World, plan: Plan) -> Plan:
    async with world.uow(read_only=True) as uow:
        found = await uow.plans.get(plan.id)
    assert found is not None
    return found


async def total(world: World, kind: AccountKind) -> Decimal:
    async with world.uow.engine.connect() as conn:
        found = (
            await conn.execute(
                text("SELECT coalesce(sum(balance), 0) FROM wallets WHERE kind = :k"),
                {"k": kind.value},
            )
        ).scalar()
    return Decimal(found)


async def available(world: World, user: User) -> Decimal:
    return (await world.credit.standing(user)).available


async def day(world: World, days: int) -> int:
    world.clock.advance(days * 86_400)
    return await world.collection.run()


# ------------------------------------------------------------------------------- paying


async def test_pay_in_4_on_time_from_checkout_to_completion(world: World) -> None:
    user, wallet, merchant, checkout, plan = await financed(world, cash="1000")
    assert checkout.status is CheckoutStatus.PAID
    assert checkout.payment_method is PaymentMethod.INSTALLMENTS
    assert [i.principal for i in plan.installments] == [Decimal(250)] * 4
    assert [i.due_date for i in plan.installments] == [
        world.clock().date() + timedelta(days=14 * n) for n in range(4)
    ]
    assert plan.installments[0].status is InstallmentStatus.PAID
    assert await world.balance(wallet) == (Decimal(750), Decimal(0))
    assert (await world.merchants.pending_settlement(merchant)).amount == Decimal(985)
    assert await total(world, AccountKind.BNPL_RECEIVABLE) == Decimal(-750)
    assert await available(world, user) == Decimal(100000) - Decimal(750)
    await world.verified()

    for n in (1, 2, 3):
        assert await day(world, 14) == 1
        found = await plan_now(world, plan)
        assert found.installments[n].status is InstallmentStatus.PAID
        await world.verified()
    assert found.status is PlanStatus.COMPLETED
    assert await world.balance(wallet) == (Decimal(0), Decimal(0))
    assert await total(world, AccountKind.BNPL_RECEIVABLE) == 0
    assert await available(world, user) == Decimal(100000)  # credit restored
    assert await day(world, 14) == 0  # nothing left to do


async def test_paid_late_with_a_fee(world: World) -> None:
    user, wallet, _, _, plan = await financed(world)  # only the first 250 in the wallet
    assert await day(world, 14) == 0  # due today, nothing to collect, not late yet
    assert await day(world, 3) == 1  # three days' grace gone: OVERDUE, fee charged
    found = await plan_now(world, plan)
    second = found.installments[1]
    assert second.status is InstallmentStatus.OVERDUE
    # 500 flat + 5% of 250, capped at 10% of the installment.
    assert second.late_fee == Decimal(25)
    assert await total(world, AccountKind.BNPL_RECEIVABLE) == Decimal(-775)
    await world.verified()
    await world.deposit(user, wallet, "275")
    assert await day(world, 1) == 1  # collected: late fee first
    found = await plan_now(world, plan)
    assert found.installments[1].status is InstallmentStatus.PAID
    assert found.installments[1].late_fee_paid == Decimal(25)
    assert await world.balance(wallet) == (Decimal(0), Decimal(0))
    await world.verified()


async def test_prepaid_in_part_then_in_full(world: World) -> None:
    user, wallet, _, _, plan = await financed(world, cash="1000")
    part = await world.plans.prepay(Prepay(user, plan.id, wallet.id, "p1", META, Decimal(300)))
    # Nothing is due: future installments, next first: all of the 2nd and 50 of the 3rd.
    assert [i.principal_paid for i in part.plan.installments] == [
        Decimal(250),
        Decimal(250),
        Decimal(50),
        Decimal(0),
    ]
    assert part.outcome.transaction.kind.value == "INSTALLMENT_REPAYMENT"
    await world.verified()
    over = await refused(
        world.plans.prepay(Prepay(user, plan.id, wallet.id, "p2", META, Decimal(451)))
    )
    assert (over.code, over.field) == (ErrorCode.INVALID_INPUT, ("input", "amount"))
    rest = await world.plans.prepay(Prepay(user, plan.id, wallet.id, "p3", META))
    assert rest.plan.status is PlanStatus.COMPLETED
    assert await world.balance(wallet) == (Decimal(0), Decimal(0))
    assert await total(world, AccountKind.BNPL_RECEIVABLE) == 0
    again = await refused(world.plans.prepay(Prepay(user, plan.id, wallet.id, "p4", META)))
    assert again.code is ErrorCode.INVALID_STATE
    await world.verified()


async def test_repaying_one_installment_and_what_cannot_be_repaid(world: World) -> None:
    user, wallet, _, _, plan = await financed(world, cash="500")
    first, second = plan.installments[0], plan.installments[1]
    paid = await refused(world.plans.repay(Repay(user, first.id, wallet.id, "r0", META)))
    assert paid.code is ErrorCode.INVALID_STATE
    done = await world.plans.repay(Repay(user, second.id, wallet.id, "r1", META))
    assert done.plan.installments[1].status is InstallmentStatus.PAID
    stranger, stranger_wallet = await world.person()
    foreign = await refused(
        world.plans.repay(Repay(stranger, plan.installments[2].id, stranger_wallet.id, "r2", META))
    )
    assert foreign.code is ErrorCode.NOT_FOUND
    usd_user_wallet = await world.wallets.open(_open(user, USD))
    mismatch = await refused(
        world.plans.repay(Repay(user, plan.installments[2].id, usd_user_wallet.id, "r3", META))
    )
    assert mismatch.code is ErrorCode.CURRENCY_MISMATCH
    unknown = await refused(world.plans.prepay(Prepay(user, uuid.uuid4(), wallet.id, "r4", META)))
    assert unknown.code is ErrorCode.NOT_FOUND
    await world.verified()


def _open(user: User, currency: object) -> object:
    from stacklo.domain.wallets import OpenWallet

    return OpenWallet(user, currency, META)  # type: ignore[arg-type]


async def test_pay_in_6_charges_its_finance_fee_with_each_payment(world: World) -> None:
    _, wallet, _, _, plan = await financed(world, P6, amount="1200", cash="2000")
    assert plan.fee == Decimal(60)  # 5% of 1200
    assert sum(i.amount for i in plan.installments) == Decimal(1260)
    assert [i.fee for i in plan.installments] == [Decimal(10)] * 6
    assert await total(world, AccountKind.FEES) == Decimal(18) + Decimal(10)  # 1.5% + first fee
    for _ in range(5):
        world.clock.now = world.clock.now + timedelta(days=31)
        await world.collection.run()
    found = await plan_now(world, plan)
    assert found.status is PlanStatus.COMPLETED
    assert await world.balance(wallet) == (Decimal(2000) - Decimal(1260), Decimal(0))
    assert await total(world, AccountKind.FEES) == Decimal(18) + Decimal(60)
    await world.verified()


async def test_pay_in_3_monthly_on_time(world: World) -> None:
    user, wallet, _, _, plan = await financed(world, P3, amount="3000", cash="3000")
    assert [i.amount for i in plan.installments] == [Decimal(1000)] * 3
    for _ in (1, 2):
        world.clock.now = world.clock.now + timedelta(days=31)
        assert await world.collection.run() == 1
        await world.verified()
    found = await plan_now(world, plan)
    assert found.status is PlanStatus.COMPLETED
    assert await world.balance(wallet) == (Decimal(0), Decimal(0))
    assert await available(world, user) == Decimal(100000)


async def test_monthly_dates_keep_the_day_or_the_months_end(world: World) -> None:
    world.clock.now = world.clock.now.replace(month=1, day=31)
    _, _, _, _, plan = await financed(world, P3, amount="3000", cash="1000")
    assert [(i.due_date.month, i.due_date.day) for i in plan.installments] == [
        (1, 31),
        (2, 28),
        (3, 31),
    ]
    await world.verified()


# ------------------------------------------------------------------------------ refusal


async def test_no_credit_too_little_credit_and_no_money_for_the_first_payment(world: World) -> None:
    owner, merchant = await shop(world)
    c = await world.checkouts.create(CreateCheckout(owner, merchant.id, Decimal(1000), META))
    nobody, nobody_wallet = await world.person()
    await world.deposit(nobody, nobody_wallet, "500")

    def attempt(u: User, w: Wallet, product: InstallmentProduct | None = P4) -> PayCheckout:
        return PayCheckout(
            u, c.id, w.id, PaymentMethod.INSTALLMENTS, uuid.uuid4().hex, META, product
        )

    declined = await refused(world.checkouts.pay(attempt(nobody, nobody_wallet)))
    assert declined.code is ErrorCode.CREDIT_DECLINED
    small, small_wallet = await buyer(world, "500", limit="999.99")
    over = await refused(world.checkouts.pay(attempt(small, small_wallet)))
    assert over.code is ErrorCode.CREDIT_LIMIT_EXCEEDED
    broke, broke_wallet = await buyer(world, "0")
    poor = await refused(world.checkouts.pay(attempt(broke, broke_wallet)))
    assert poor.code is ErrorCode.INSUFFICIENT_FUNDS
    unnamed = await refused(world.checkouts.pay(attempt(broke, broke_wallet, None)))
    assert unnamed.code is ErrorCode.INVALID_INPUT
    async with world.uow(read_only=True) as uow:
        assert await uow.plans.for_checkout(c.id) is None  # nothing written
    await world.verified()


async def test_ten_payers_at_once_make_one_plan(world: World) -> None:
    owner, merchant = await shop(world)
    c = await world.checkouts.create(CreateCheckout(owner, merchant.id, Decimal(2000), META))
    buyers = [await buyer(world, "600") for _ in range(10)]
    results = await asyncio.gather(
        *(
            world.checkouts.pay(
                PayCheckout(u, c.id, w.id, PaymentMethod.INSTALLMENTS, uuid.uuid4().hex, META, P4)
            )
            for u, w in buyers
        ),
        return_exceptions=True,
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(r.code is ErrorCode.INVALID_STATE for r in results if isinstance(r, DomainError))
    async with world.uow.engine.connect() as conn:
        plans = (await conn.execute(text("SELECT count(*) FROM installment_plans"))).scalar()
    assert plans == 1
    await world.verified()


# ---------------------------------------------------------------------- collection runs


async def test_two_collection_runs_at_once_collect_once(world: World) -> None:
    _, wallet, _, _, plan = await financed(world, cash="1000")
    world.clock.advance(14 * 86_400)
    runs = await asyncio.gather(world.collection.run(), world.collection.run())
    assert sorted(runs) == [0, 1]
    assert await world.balance(wallet) == (Decimal(500), Decimal(0))
    found = await plan_now(world, plan)
    assert [i.status for i in found.installments[:3]] == [InstallmentStatus.PAID] * 2 + [
        InstallmentStatus.SCHEDULED
    ]
    await world.verified()


async def test_reminders_go_once_before_each_due_date(world: World) -> None:
    _, _, _, _, plan = await financed(world, cash="1000")
    world.clock.advance(11 * 86_400)  # the 2nd is due in 3 days
    assert await world.collection.run() == 1
    assert await world.collection.run() == 0
    async with world.uow.engine.connect() as conn:
        events = (
            (
                await conn.execute(
                    text(
                        "SELECT payload FROM outbox_events WHERE topic = 'notification'"
                        " AND payload->>'kind' LIKE 'installment.%'"
                    )
                )
            )
            .scalars()
            .all()
        )
    # The merchant's approval is noticed too; only installment notices count here.
    assert len(events) == 1
    assert events[0]["kind"] == "installment.due"
    assert events[0]["installment_id"] == str(plan.installments[1].id)
    await world.verified()


async def test_default_suspends_credit(world: World) -> None:
    user, _, _, _, plan = await financed(world)
    await day(world, 14)
    await day(world, 3)  # overdue
    world.clock.advance(57 * 86_400)
    await world.collection.run()  # 60 days past due: defaulted
    found = await plan_now(world, plan)
    assert found.status is PlanStatus.DEFAULTED
    standing = await world.credit.standing(user)
    assert standing.profile.status is CreditStatus.SUSPENDED and standing.available == 0
    refused_again = await refused(
        world.credit.apply(ApplyForCredit(user, Decimal(500000), EmploymentStatus.EMPLOYED, META))
    )
    assert refused_again.code is ErrorCode.INVALID_STATE
    await world.verified()


# ------------------------------------------------------------------------------ refunds


async def test_a_full_refund_cancels_the_plan_and_gives_back_what_was_paid(world: World) -> None:
    user, wallet, merchant, checkout, plan = await financed(world, cash="250")
    owner = await _owner(world, merchant)
    back = await world.checkouts.refund(RefundCheckout(owner, checkout.id, "returned", "k", META))
    assert back.checkout.status is CheckoutStatus.REFUNDED
    found = await plan_now(world, plan)
    assert found.status is PlanStatus.CANCELLED
    assert await world.balance(wallet) == (Decimal(250), Decimal(0))
    assert await total(world, AccountKind.BNPL_RECEIVABLE) == 0
    assert (await world.merchants.pending_settlement(merchant)).amount == 0
    assert await available(world, user) == Decimal(100000)
    ended = await refused(world.plans.prepay(Prepay(user, plan.id, wallet.id, "late", META)))
    assert ended.code is ErrorCode.INVALID_STATE  # a cancelled plan takes no payment
    await world.verified()


async def test_partial_refunds_lower_what_is_owed_from_the_last_installment(world: World) -> None:
    _, wallet, merchant, checkout, plan = await financed(world, cash="250")
    owner = await _owner(world, merchant)
    await world.checkouts.refund(
        RefundCheckout(owner, checkout.id, "one shoe", "k1", META, amount=Decimal(300))
    )
    found = await plan_now(world, plan)
    assert [i.principal for i in found.installments] == [
        Decimal(250),
        Decimal(250),
        Decimal(200),
        Decimal(0),
    ]
    assert found.installments[3].status is InstallmentStatus.WAIVED
    assert await world.balance(wallet) == (Decimal(0), Decimal(0))  # no money back yet
    await world.verified()
    # More than is still owed (450): 450 is forgiven, 50 comes back.
    await world.checkouts.refund(
        RefundCheckout(owner, checkout.id, "both", "k2", META, amount=Decimal(500))
    )
    found = await plan_now(world, plan)
    assert found.status is PlanStatus.COMPLETED  # nothing left to pay
    assert await world.balance(wallet) == (Decimal(50), Decimal(0))
    assert await total(world, AccountKind.BNPL_RECEIVABLE) == 0
    await world.verified()


async def test_refunds_at_several_points_of_a_pay_in_6_life(world: World) -> None:
    _, wallet, merchant, checkout, plan = await financed(world, P6, amount="1200", cash="1000")
    owner = await _owner(world, merchant)
    world.clock.now = world.clock.now + timedelta(days=31)
    await world.collection.run()  # 2nd paid: 2 x 210 paid so far
    await world.checkouts.refund(
        RefundCheckout(owner, checkout.id, "part", "k1", META, amount=Decimal(100))
    )
    await world.verified()
    world.clock.now = world.clock.now + timedelta(days=31)
    await world.collection.run()
    before = (await world.balance(wallet))[0]
    await world.checkouts.refund(RefundCheckout(owner, checkout.id, "all", "k2", META))
    found = await plan_now(world, plan)
    assert found.status is PlanStatus.CANCELLED
    after = (await world.balance(wallet))[0]
    assert after - before > 0  # principal and fees paid came back
    assert await world.balance(wallet) == (Decimal(1000), Decimal(0))  # everything paid returned
    assert await total(world, AccountKind.BNPL_RECEIVABLE) == 0
    await world.verified()


async def _owner(world: World, merchant: Merchant) -> User:
    async with world.uow(read_only=True) as uow:
        owner = await uow.users.get(merchant.user_id)
    assert owner is not None
    return owner


# ------------------------------------------------------------------------------ credit


async def test_applying_for_credit(world: World) -> None:
    unverified, _ = await world.person(kyc=KycStatus.PENDING)
    no = await refused(
        world.credit.apply(
            ApplyForCredit(unverified, Decimal(1000), EmploymentStatus.EMPLOYED, META)
        )
    )
    assert no.code is ErrorCode.KYC_REQUIRED
    user, wallet = await world.person()
    for bad in (Decimal(-1), Decimal("1e13"), Decimal("NaN")):
        wrong = await refused(
            world.credit.apply(ApplyForCredit(user, bad, EmploymentStatus.EMPLOYED, META))
        )
        assert wrong.code is ErrorCode.INVALID_INPUT
    fresh = await world.credit.apply(
        ApplyForCredit(user, Decimal(50000), EmploymentStatus.STUDENT, META)
    )
    assert fresh.profile.status is CreditStatus.DECLINED and fresh.profile.reasons
    assert 300 <= (fresh.profile.score or 0) <= 850
    soon = await refused(
        world.credit.apply(ApplyForCredit(user, Decimal(900000), EmploymentStatus.EMPLOYED, META))
    )
    assert soon.code is ErrorCode.INVALID_STATE  # the cool-off
    # A year on, with money coming in: approved, with a limit.
    world.clock.advance(400 * 86_400)
    for _ in range(3):
        await world.deposit(user, wallet, "400000")
    world.clock.advance(86_400)
    later = await world.credit.apply(
        ApplyForCredit(user, Decimal(900000), EmploymentStatus.EMPLOYED, META)
    )
    assert later.profile.status is CreditStatus.APPROVED, later.profile.reasons
    assert later.profile.limit > 0 and later.available == later.profile.limit
    async with world.uow.engine.connect() as conn:
        stored = (
            await conn.execute(text("SELECT count(*), max(version) FROM credit_decisions"))
        ).one()
    assert stored[0] == 2 and stored[1]
    await world.verified()
