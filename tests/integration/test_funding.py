"""Deposits, withdrawals and the provider's word on them: one rule a test, on the use cases
(no HTTP; real PostgreSQL; the sandbox provider)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.funding import RequestWithdrawal, StartDeposit
from stacklo.domain.ledger import TransactionStatus
from stacklo.domain.models import User, Wallet
from stacklo.domain.ports import ProviderEventKind
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
