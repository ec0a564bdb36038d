"""Deposits, withdrawals and the provider's word on them: one rule a test, on the use cases
(no HTTP; real PostgreSQL; the sandbox provider)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.funding import RequestWithdrawal, StartDeposit
from stacklo.domain.ledger import TransactionKind, TransactionStatus
from stacklo.domain.models import User, Wallet
from stacklo.domain.money import Money
from stacklo.domain.ports import (
    BankAccount,
    DepositVerification,
    PayoutStatus,
    ProviderEventKind,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderUnavailable,
)
from stacklo.integrations.sandbox import SandboxProvider
from tests.integration.world import BANK, BTC, META, PayoutsDown, World


@pytest.fixture
def world(uow_factory: SqlUnitOfWorkFactory) -> World:
    return World(uow_factory)


def withdrawal(user: User, wallet: Wallet, amount: str, key: str = "w") -> RequestWithdrawal:
    return RequestWithdrawal(user, wallet.id, Decimal(amount), BANK, key, META)


async def test_a_deposit_moves_nothing_until_the_provider_says_it_was_paid(world: World) -> None:
    alice, a = await world.person()
    started = await world.funding.start_deposit(StartDeposit(alice, a.id, Decimal(25), "d", META))
    assert started.transaction.status is TransactionStatus.PROCESSING
    assert started.payment_url and started.transaction.reference in started.payment_url
    assert await world.balance(a) == (Decimal(0), Decimal(0))
    event = world.provider_event(ProviderEventKind.DEPOSIT_SUCCEEDED, started.transaction)
    assert await world.funding.apply_provider_event(event, META) == "credited"
    assert await world.balance(a) == (Decimal(25), Decimal(0))


async def test_the_providers_word_is_applied_once(world: World) -> None:
    alice, a = await world.person()
    started = await world.funding.start_deposit(StartDeposit(alice, a.id, Decimal(25), "d", META))
    event = world.provider_event(ProviderEventKind.DEPOSIT_SUCCEEDED, started.transaction)
    assert await world.funding.apply_provider_event(event, META) == "credited"
    assert await world.funding.apply_provider_event(event, META) == "duplicate"
    assert await world.balance(a) == (Decimal(25), Decimal(0))


async def test_another_amount_paid_is_held_for_review_not_credited(world: World) -> None:
    alice, a = await world.person()
    started = await world.funding.start_deposit(StartDeposit(alice, a.id, Decimal(25), "d", META))
    event = world.provider_event(
        ProviderEventKind.DEPOSIT_SUCCEEDED, started.transaction, amount_minor=99
    )
    assert await world.funding.apply_provider_event(event, META) == "review_required"
    assert await world.balance(a) == (Decimal(0), Decimal(0))


async def test_a_failed_payment_fails_the_deposit(world: World) -> None:
    alice, a = await world.person()
    started = await world.funding.start_deposit(StartDeposit(alice, a.id, Decimal(25), "d", META))
    event = world.provider_event(ProviderEventKind.DEPOSIT_FAILED, started.transaction)
    assert await world.funding.apply_provider_event(event, META) == "failed"
    async with world.uow(read_only=True) as uow:
        tx = await uow.ledger.get(started.transaction.id)
    assert tx is not None and tx.status is TransactionStatus.FAILED


async def test_a_withdrawal_holds_the_amount_until_the_payout_settles(world: World) -> None:
    alice, a = await world.person()
    await world.deposit(alice, a, "100")
    requested = await world.funding.request_withdrawal(withdrawal(alice, a, "40"))
    assert requested.transaction.status is TransactionStatus.PROCESSING
    assert await world.balance(a) == (Decimal(100), Decimal(40))
    event = world.provider_event(ProviderEventKind.PAYOUT_SUCCEEDED, requested.transaction)
    assert await world.funding.apply_provider_event(event, META) == "paid_out"
    assert await world.balance(a) == (Decimal(60), Decimal(0))


@pytest.mark.parametrize(
    "kind", [ProviderEventKind.PAYOUT_FAILED, ProviderEventKind.PAYOUT_REVERSED]
)
async def test_a_failed_payout_gives_the_hold_back(world: World, kind: ProviderEventKind) -> None:
    alice, a = await world.person()
    await world.deposit(alice, a, "100")
    requested = await world.funding.request_withdrawal(withdrawal(alice, a, "40"))
    event = world.provider_event(kind, requested.transaction)
    assert await world.funding.apply_provider_event(event, META) == "released"
    assert await world.balance(a) == (Decimal(100), Decimal(0))


async def test_held_money_cannot_be_withdrawn_twice(world: World) -> None:
    alice, a = await world.person()
    await world.deposit(alice, a, "100")
    await world.funding.request_withdrawal(withdrawal(alice, a, "60", key="one"))
    with pytest.raises(DomainError) as e:
        await world.funding.request_withdrawal(withdrawal(alice, a, "60", key="two"))
    assert e.value.code is ErrorCode.INSUFFICIENT_FUNDS


async def test_a_provider_that_cannot_pay_out_releases_the_hold_at_once(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    world = World(uow_factory, provider=PayoutsDown("sandbox-test-secret"))
    alice, a = await world.person()
    await world.deposit(alice, a, "100")
    outcome = await world.funding.request_withdrawal(withdrawal(alice, a, "40"))
    assert outcome.error is not None and outcome.error.code is ErrorCode.PROVIDER_UNAVAILABLE
    assert outcome.transaction.status is TransactionStatus.FAILED
    assert await world.balance(a) == (Decimal(100), Decimal(0))
    again = await world.funding.request_withdrawal(withdrawal(alice, a, "40"))
    assert again.transaction.id == outcome.transaction.id
    assert again.error is not None and repr(again.error) == repr(outcome.error)


async def test_crypto_does_not_take_the_bank_rail(world: World) -> None:
    alice, coins = await world.person(BTC)
    with pytest.raises(DomainError) as e:
        await world.funding.start_deposit(
            StartDeposit(alice, coins.id, Decimal(1), uuid.uuid4().hex, META)
        )
    assert (e.value.code, e.value.field) == (ErrorCode.INVALID_INPUT, ("input", "walletId"))


# ------------------------------------------------------------- payouts whose word never came


class LookedUp(SandboxProvider):
    """Paystack as the reconciler meets it: each payout is answered as the test says (made
    with the answer lost, refused unknowingly, or a crash before the call), and payouts and
    deposits are looked up by reference. What it never saw is PENDING or ongoing, so other
    tests' movements in the shared database are left alone."""

    unknown_outcome_grace = timedelta(seconds=39)

    def __init__(self) -> None:
        super().__init__("sandbox-test-secret")
        self.answer: str = "lost"  # lost: made, answer lost; unsent: never made, answer lost
        self.status: dict[str, PayoutStatus] = {}
        self.lookups: list[str] = []
        self.paid: dict[str, tuple[str, int]] = {}
        self.down = False

    async def payout(self, reference: str, amount: Money, account: BankAccount, reason: str) -> str:
        if self.answer == "crash":
            self.status[reference] = PayoutStatus.NOT_FOUND
            raise RuntimeError("the process died before asking")
        made = self.answer == "lost"
        self.status[reference] = PayoutStatus.PENDING if made else PayoutStatus.NOT_FOUND
        if self.answer == "code":
            return "TRF_" + reference
        raise ProviderOutcomeUnknown("read timeout")

    async def payout_status(self, reference: str) -> PayoutStatus:
        self.lookups.append(reference)
        return self.status.get(reference, PayoutStatus.PENDING)

    async def verify_deposit(self, reference: str) -> DepositVerification:
        """Paystack's word on a deposit: ``paid`` says what was paid, if anything yet."""
        self.lookups.append(reference)
        if self.down:
            raise ProviderUnavailable("verify timed out")
        status, minor = self.paid.get(reference, ("ongoing", 0))
        if status == "unknown":
            raise ProviderRejected("Transaction reference not found")
        return DepositVerification(reference, status, minor, "NGN", "4242")


@pytest.fixture
def looked_up(uow_factory: SqlUnitOfWorkFactory) -> tuple[World, LookedUp]:
    provider = LookedUp()
    return World(uow_factory, provider=provider), provider


async def status_of(world: World, reference: str) -> TransactionStatus:
    async with world.uow(read_only=True) as uow:
        tx = await uow.ledger.by_reference(reference)
    assert tx is not None
    return tx.status


async def test_the_reconciler_settles_a_payout_whose_answer_was_lost(
    looked_up: tuple[World, LookedUp],
) -> None:
    """No webhook and no retry by the client: the scheduler's round asks the provider once the
    grace is over and posts what it says, once."""
    world, provider = looked_up
    alice, a = await world.person()
    await world.deposit(alice, a, "100")
    reference = (await world.funding.request_withdrawal(withdrawal(alice, a, "40"))).transaction
    reference = reference.reference
    provider.status[reference] = PayoutStatus.SUCCEEDED  # the bank paid it meanwhile
    await world.funding.reconcile_withdrawals(batch=10_000)
    assert reference not in provider.lookups  # within the grace: it may still be on its way
    assert await world.balance(a) == (Decimal(100), Decimal(40))

    world.clock.advance(40)
    assert await world.funding.reconcile_withdrawals(batch=10_000) >= 1
    assert await status_of(world, reference) is TransactionStatus.COMPLETED
    assert await world.balance(a) == (Decimal(60), Decimal(0))
    provider.lookups.clear()
    await world.funding.reconcile_withdrawals(batch=10_000)
    assert reference not in provider.lookups  # settled: never asked again
    assert await world.balance(a) == (Decimal(60), Decimal(0))
    await world.verified()


@pytest.mark.parametrize("answer", ["unsent", "crash"])
async def test_the_reconciler_releases_a_payout_the_provider_never_made(
    looked_up: tuple[World, LookedUp], answer: str
) -> None:
    """Never made (the request lost on its way, or the process died between the hold and the
    call): after the grace the provider's "not found" is the truth, and the hold goes back."""
    world, provider = looked_up
    provider.answer = answer
    alice, a = await world.person()
    await world.deposit(alice, a, "100")
    if answer == "crash":
        with pytest.raises(RuntimeError):
            await world.funding.request_withdrawal(withdrawal(alice, a, "40"))
        (reference,) = provider.status
    else:
        outcome = await world.funding.request_withdrawal(withdrawal(alice, a, "40"))
        assert outcome.transaction.status is TransactionStatus.PROCESSING
        reference = outcome.transaction.reference
    assert await world.balance(a) == (Decimal(100), Decimal(40))
    world.clock.advance(40)
    await world.funding.reconcile_withdrawals(batch=10_000)
    assert await status_of(world, reference) is TransactionStatus.FAILED
    assert await world.balance(a) == (Decimal(100), Decimal(0))
    await world.verified()


async def test_the_reconciler_keeps_a_payout_still_pending_and_asks_the_others_first(
    looked_up: tuple[World, LookedUp],
) -> None:
    """PENDING keeps the hold; the next round starts with the withdrawals asked about least
    recently, so a batch never sees the same ones over and over."""
    world, provider = looked_up
    alice, a = await world.person()
    await world.deposit(alice, a, "100")
    mine = [
        (await world.funding.request_withdrawal(withdrawal(alice, a, "10", key=k))).transaction
        for k in ("one", "two")
    ]
    world.clock.advance(40)
    await world.funding.reconcile_withdrawals(batch=10_000)
    assert [await status_of(world, t.reference) for t in mine] == [TransactionStatus.PROCESSING] * 2
    assert await world.balance(a) == (Decimal(100), Decimal(20))
    async with world.uow(read_only=True) as uow:
        waiting = await uow.ledger.in_flight(TransactionKind.WITHDRAWAL, world.clock(), 10_000)
    order = [t.reference for t in waiting if t.reference in {m.reference for m in mine}]
    assert order == [m.reference for m in mine]  # both asked, in the order they were asked
    provider.lookups.clear()
    await world.funding.reconcile_withdrawals(batch=1)
    async with world.uow(read_only=True) as uow:
        waiting = await uow.ledger.in_flight(TransactionKind.WITHDRAWAL, world.clock(), 10_000)
    assert waiting[-1].reference == provider.lookups[0]  # asked just now: last in line


async def test_a_not_found_after_the_provider_gave_its_code_is_not_believed(
    looked_up: tuple[World, LookedUp],
) -> None:
    """The provider answered with its transfer code: it has the transfer, whatever a lookup
    says, so the hold stays until it settles."""
    world, provider = looked_up
    provider.answer = "code"
    alice, a = await world.person()
    await world.deposit(alice, a, "100")
    outcome = await world.funding.request_withdrawal(withdrawal(alice, a, "40"))
    provider.status[outcome.transaction.reference] = PayoutStatus.NOT_FOUND
    world.clock.advance(40)
    await world.funding.reconcile_withdrawals(batch=10_000)
    assert outcome.transaction.reference in provider.lookups
    assert await status_of(world, outcome.transaction.reference) is TransactionStatus.PROCESSING
    assert await world.balance(a) == (Decimal(100), Decimal(40))


async def started(world: World, user: User, wallet: Wallet, amount: str = "25") -> str:
    outcome = await world.funding.start_deposit(
        StartDeposit(user, wallet.id, Decimal(amount), uuid.uuid4().hex, META)
    )
    return outcome.transaction.reference


async def test_the_reconciler_credits_a_deposit_whose_webhook_was_lost(
    looked_up: tuple[World, LookedUp],
) -> None:
    """Paid, and the webhook never came: credited once by the lookup; the webhook arriving
    after is a duplicate."""
    world, provider = looked_up
    alice, a = await world.person()
    reference = await started(world, alice, a)
    provider.paid[reference] = ("success", 2500)
    await world.funding.reconcile_deposits(batch=10_000)
    assert reference not in provider.lookups  # the payer may still be on the page
    world.clock.advance(121)
    assert await world.funding.reconcile_deposits(batch=10_000) >= 1
    assert await status_of(world, reference) is TransactionStatus.COMPLETED
    assert await world.balance(a) == (Decimal(25), Decimal(0))
    async with world.uow(read_only=True) as uow:
        tx = await uow.ledger.by_reference(reference)
    assert tx is not None
    webhook = world.provider_event(ProviderEventKind.DEPOSIT_SUCCEEDED, tx, name="charge.success")
    assert await world.funding.apply_provider_event(webhook, META) == "duplicate"
    assert await world.balance(a) == (Decimal(25), Decimal(0))
    await world.verified()


@pytest.mark.parametrize(
    ("word", "status", "balance"),
    [
        (("failed", 0), TransactionStatus.FAILED, 0),
        (("success", 9900), TransactionStatus.PROCESSING, 0),  # another amount: for review
    ],
)
async def test_the_reconciler_applies_what_the_lookup_says_as_the_webhook_would(
    looked_up: tuple[World, LookedUp],
    word: tuple[str, int],
    status: TransactionStatus,
    balance: int,
) -> None:
    world, provider = looked_up
    alice, a = await world.person()
    reference = await started(world, alice, a)
    provider.paid[reference] = word
    world.clock.advance(121)
    await world.funding.reconcile_deposits(batch=10_000)
    assert await status_of(world, reference) is status
    assert await world.balance(a) == (Decimal(balance), Decimal(0))
    provider.lookups.clear()
    await world.funding.reconcile_deposits(batch=10_000)
    assert reference not in provider.lookups  # settled, or a person's to review: not asked again


async def test_an_unpaid_deposit_expires_and_a_later_payment_is_still_credited_once(
    looked_up: tuple[World, LookedUp],
) -> None:
    world, provider = looked_up
    alice, a = await world.person()
    ongoing = await started(world, alice, a)
    unknown = await started(world, alice, a)
    provider.paid[unknown] = ("unknown", 0)
    world.clock.advance(3600)
    await world.funding.reconcile_deposits(batch=10_000)
    assert {ongoing, unknown} <= set(provider.lookups)
    assert [await status_of(world, r) for r in (ongoing, unknown)] == [
        TransactionStatus.PROCESSING
    ] * 2
    provider.down = True  # no word at all: never expired on a guess
    world.clock.advance(86400)
    await world.funding.reconcile_deposits(batch=10_000)
    assert await status_of(world, ongoing) is TransactionStatus.PROCESSING
    provider.down = False
    await world.funding.reconcile_deposits(batch=10_000)
    assert [await status_of(world, r) for r in (ongoing, unknown)] == [TransactionStatus.FAILED] * 2
    async with world.uow(read_only=True) as uow:
        trail = await uow.audit.page(first=500, after=None, action="deposit.expired", actor_id=None)
    assert {ongoing, unknown} <= {e.target_id for e in trail.items}
    async with world.uow(read_only=True) as uow:
        tx = await uow.ledger.by_reference(ongoing)
    assert tx is not None
    late = world.provider_event(ProviderEventKind.DEPOSIT_SUCCEEDED, tx, name="charge.success")
    assert await world.funding.apply_provider_event(late, META) == "credited_late"
    assert await world.funding.apply_provider_event(late, META) == "duplicate"
    assert await world.balance(a) == (Decimal(25), Decimal(0))
    await world.verified()
