"""Every kind of movement goes through the one booking function, and after each the ledger
verifier (``stacklo ledger verify``) finds nothing wrong."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.conversions import Convert
from stacklo.domain.funding import RequestWithdrawal, StartDeposit
from stacklo.domain.ledger import TransactionKind, TransactionStatus
from stacklo.domain.models import User, Wallet
from stacklo.domain.money import CurrencyCode
from stacklo.domain.ports import ProviderEventKind
from stacklo.domain.quotes import CreateQuote
from stacklo.domain.transfers import Recipient, SendMoney
from stacklo.domain.wallets import add_wallet
from tests.integration.world import BANK, BTC, META, NGN, USD, PayoutsDown, World


async def deposit_credited(world: World) -> tuple[TransactionKind, TransactionStatus]:
    alice, a = await world.person()
    tx = await world.deposit(alice, a, "100")
    return tx.kind, TransactionStatus.COMPLETED


async def deposit_failed(world: World) -> tuple[TransactionKind, TransactionStatus]:
    alice, a = await world.person()
    started = await world.funding.start_deposit(StartDeposit(alice, a.id, Decimal(5), "d", META))
    event = world.provider_event(ProviderEventKind.DEPOSIT_FAILED, started.transaction)
    await world.funding.apply_provider_event(event, META)
    return started.transaction.kind, TransactionStatus.FAILED


async def transfer(world: World) -> tuple[TransactionKind, TransactionStatus]:
    (alice, a), (bob, _) = await world.person(), await world.person()
    await world.deposit(alice, a, "100")
    done = await world.transfers.send(
        SendMoney(alice, a.id, Recipient(email=bob.email), Decimal(40), "t", META)
    )
    return done.transaction.kind, done.transaction.status


async def transfer_across_currencies(world: World) -> tuple[TransactionKind, TransactionStatus]:
    (alice, a), (bob, _) = await world.person(), await world.person(USD)
    await world.deposit(alice, a, "50000")
    quote = await world.quotes.create(CreateQuote(alice, NGN, USD, target_amount=Decimal(7)))
    done = await world.transfers.send(
        SendMoney(
            alice, a.id, Recipient(email=bob.email), quote.source.amount, "t", META, quote=quote.id
        )
    )
    return done.transaction.kind, done.transaction.status


def conversion(
    source: str, target: str, amount: str
) -> Callable[[World], Awaitable[tuple[TransactionKind, TransactionStatus]]]:
    async def run(world: World) -> tuple[TransactionKind, TransactionStatus]:
        s, t = CurrencyCode(source), CurrencyCode(target)
        alice, wallet = await world.person(s)
        if s is BTC:  # crypto arrives by conversion only: buy some first
            await world.deposit(alice, await _naira(world, alice), "5000000")
            buy = await world.quotes.create(CreateQuote(alice, NGN, BTC, Decimal("1000000")))
            await world.conversions.convert(Convert(alice, buy.id, "buy", META))
        else:
            await world.deposit(alice, wallet, "5000000")
        quote = await world.quotes.create(CreateQuote(alice, s, t, Decimal(amount)))
        done = await world.conversions.convert(Convert(alice, quote.id, "c", META))
        return done.transaction.kind, done.transaction.status

    return run


async def _naira(world: World, user: User) -> Wallet:
    async with world.uow() as uow:
        wallet = await add_wallet(uow, user.id, NGN, world.clock(), META)
        await uow.commit()
    return wallet


async def withdrawal_requested(world: World) -> tuple[TransactionKind, TransactionStatus]:
    alice, a = await world.person()
    await world.deposit(alice, a, "100")
    done = await world.funding.request_withdrawal(
        RequestWithdrawal(alice, a.id, Decimal(30), BANK, "w", META)
    )
    return done.transaction.kind, done.transaction.status


def withdrawal_settled(
    kind: ProviderEventKind,
) -> Callable[[World], Awaitable[tuple[TransactionKind, TransactionStatus]]]:
    async def run(world: World) -> tuple[TransactionKind, TransactionStatus]:
        alice, a = await world.person()
        await world.deposit(alice, a, "100")
        done = await world.funding.request_withdrawal(
            RequestWithdrawal(alice, a.id, Decimal(30), BANK, "w", META)
        )
        await world.funding.apply_provider_event(world.provider_event(kind, done.transaction), META)
        async with world.uow(read_only=True) as uow:
            tx = await uow.ledger.get(done.transaction.id)
        assert tx is not None
        return tx.kind, tx.status

    return run


async def withdrawal_refused_by_provider(world: World) -> tuple[TransactionKind, TransactionStatus]:
    down = World(world.uow, provider=PayoutsDown("sandbox-test-secret"))
    alice, a = await down.person()
    await down.deposit(alice, a, "100")
    done = await down.funding.request_withdrawal(
        RequestWithdrawal(alice, a.id, Decimal(30), BANK, "w", META)
    )
    return done.transaction.kind, done.transaction.status


KINDS = {
    "deposit credited": (deposit_credited, TransactionKind.DEPOSIT, "COMPLETED"),
    "deposit failed": (deposit_failed, TransactionKind.DEPOSIT, "FAILED"),
    "transfer": (transfer, TransactionKind.TRANSFER, "COMPLETED"),
    "transfer across currencies": (
        transfer_across_currencies,
        TransactionKind.TRANSFER,
        "COMPLETED",
    ),
    "exchange": (conversion("NGN", "USD", "10000"), TransactionKind.EXCHANGE, "COMPLETED"),
    "crypto buy": (conversion("NGN", "BTC", "100000"), TransactionKind.CRYPTO_BUY, "COMPLETED"),
    "crypto sell": (conversion("BTC", "NGN", "0.0001"), TransactionKind.CRYPTO_SELL, "COMPLETED"),
    "withdrawal held": (withdrawal_requested, TransactionKind.WITHDRAWAL, "PROCESSING"),
    "withdrawal paid out": (
        withdrawal_settled(ProviderEventKind.PAYOUT_SUCCEEDED),
        TransactionKind.WITHDRAWAL,
        "COMPLETED",
    ),
    "withdrawal failed": (
        withdrawal_settled(ProviderEventKind.PAYOUT_FAILED),
        TransactionKind.WITHDRAWAL,
        "FAILED",
    ),
    "withdrawal reversed": (
        withdrawal_settled(ProviderEventKind.PAYOUT_REVERSED),
        TransactionKind.WITHDRAWAL,
        "FAILED",
    ),
    "withdrawal the provider refused": (
        withdrawal_refused_by_provider,
        TransactionKind.WITHDRAWAL,
        "FAILED",
    ),
}


@pytest.mark.parametrize("name", list(KINDS))
async def test_the_ledger_verifies_after_each_kind_of_movement(
    uow_factory: SqlUnitOfWorkFactory, name: str
) -> None:
    world = World(uow_factory)
    await world.rates_now()
    run, kind, status = KINDS[name]
    assert await run(world) == (kind, TransactionStatus(status))
    await world.verified()
