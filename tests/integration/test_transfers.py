"""sendMoney's rules, one a test, on the use case itself (no HTTP; real PostgreSQL)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import KycStatus
from stacklo.domain.quotes import CreateQuote
from stacklo.domain.transfers import Recipient, SendMoney
from stacklo.domain.wallets import FreezeWallet
from tests.integration.world import META, NGN, USD, World


@pytest.fixture
def world(uow_factory: SqlUnitOfWorkFactory) -> World:
    return World(uow_factory)


def send(
    user: object, wallet: object, to: Recipient, amount: str, key: str | None = None, **more: object
) -> SendMoney:
    return SendMoney(
        user=user,  # type: ignore[arg-type]
        from_wallet=wallet.id,  # type: ignore[attr-defined]
        to=to,
        amount=Decimal(amount),
        idempotency_key=key or uuid.uuid4().hex,
        meta=META,
        **more,  # type: ignore[arg-type]
    )


async def refused(world: World, cmd: SendMoney) -> DomainError:
    with pytest.raises(DomainError) as e:
        await world.transfers.send(cmd)
    return e.value


async def test_a_transfer_moves_exactly_the_amount(world: World) -> None:
    (alice, a), (bob, b) = await world.person(), await world.person()
    await world.deposit(alice, a, "100")
    outcome = await world.transfers.send(send(alice, a, Recipient(email=bob.email), "30.50"))
    assert outcome.transaction.status.value == "COMPLETED"
    assert (await world.balance(a), await world.balance(b)) == (
        (Decimal("69.50"), Decimal(0)),
        (Decimal("30.50"), Decimal(0)),
    )
    await world.verified()


async def test_more_than_is_available_is_refused_and_writes_nothing(world: World) -> None:
    (alice, a), (bob, _) = await world.person(), await world.person()
    await world.deposit(alice, a, "10")
    cmd = send(alice, a, Recipient(email=bob.email), "10.01", key="k")
    assert (await refused(world, cmd)).code is ErrorCode.INSUFFICIENT_FUNDS
    # The key was not kept: the same request may succeed later.
    await world.deposit(alice, a, "1")
    assert (await world.transfers.send(cmd)).transaction.amount == Decimal("10.01")


async def test_a_frozen_wallet_cannot_send(world: World, uow_factory: SqlUnitOfWorkFactory) -> None:
    (alice, a), (bob, _) = await world.person(), await world.person()
    await world.deposit(alice, a, "10")
    staff, _ = await world.person()
    await world.wallets.freeze(FreezeWallet(staff, a.id, True, "checking", META))
    error = await refused(world, send(alice, a, Recipient(email=bob.email), "1"))
    assert (error.code, error.field) == (ErrorCode.WALLET_FROZEN, ("input", "fromWalletId"))


async def test_unverified_users_have_a_daily_limit_up_to_and_including_it(world: World) -> None:
    (alice, a), (bob, _) = await world.person(USD, KycStatus.PENDING), await world.person(USD)
    await world.deposit(alice, a, "100")
    await world.transfers.send(send(alice, a, Recipient(email=bob.email), "30"))
    await world.transfers.send(send(alice, a, Recipient(email=bob.email), "20"))  # 50: the cap
    error = await refused(world, send(alice, a, Recipient(email=bob.email), "0.01"))
    assert error.code is ErrorCode.LIMIT_EXCEEDED


async def test_a_retry_answers_the_first_transfer(world: World) -> None:
    (alice, a), (bob, b) = await world.person(), await world.person()
    await world.deposit(alice, a, "100")
    first = await world.transfers.send(send(alice, a, Recipient(email=bob.email), "5", key="k"))
    again = await world.transfers.send(send(alice, a, Recipient(email=bob.email), "5", key="k"))
    assert again.transaction.id == first.transaction.id
    assert (await world.balance(b))[0] == Decimal(5)


async def test_a_retry_answers_the_first_transfer_even_where_it_would_be_refused_now(
    world: World,
) -> None:
    # All of it went the first time: the retry, with nothing left to send, still gets the
    # first answer, and another request under the key is refused as such, not for funds.
    (alice, a), (bob, b) = await world.person(), await world.person()
    await world.deposit(alice, a, "40")
    first = await world.transfers.send(send(alice, a, Recipient(email=bob.email), "40", key="k"))
    again = await world.transfers.send(send(alice, a, Recipient(email=bob.email), "40", key="k"))
    assert again.transaction.id == first.transaction.id
    other = await refused(world, send(alice, a, Recipient(email=bob.email), "41", key="k"))
    assert other.code is ErrorCode.IDEMPOTENCY_KEY_REUSED
    assert (await world.balance(a), await world.balance(b)) == (
        (Decimal(0), Decimal(0)),
        (Decimal(40), Decimal(0)),
    )


async def test_a_key_reused_for_another_request_is_refused(world: World) -> None:
    (alice, a), (bob, _) = await world.person(), await world.person()
    await world.deposit(alice, a, "100")
    await world.transfers.send(send(alice, a, Recipient(email=bob.email), "5", key="k"))
    error = await refused(world, send(alice, a, Recipient(email=bob.email), "6", key="k"))
    assert error.code is ErrorCode.IDEMPOTENCY_KEY_REUSED


async def test_someone_without_a_wallet_in_the_currency_is_as_unknown_as_nobody(
    world: World,
) -> None:
    (alice, a), (dollars, _) = await world.person(), await world.person(USD)
    await world.deposit(alice, a, "100")
    known = await refused(world, send(alice, a, Recipient(email=dollars.email), "1"))
    nobody = await refused(world, send(alice, a, Recipient(email="no-one@example.com"), "1"))
    assert (known.code, known.message, known.field) == (nobody.code, nobody.message, nobody.field)
    assert known.code is ErrorCode.NOT_FOUND


async def test_the_senders_refusals_come_before_the_recipient_lookup(world: World) -> None:
    (alice, a) = await world.person()
    await world.deposit(alice, a, "1")
    error = await refused(world, send(alice, a, Recipient(email="no-one@example.com"), "500"))
    assert error.code is ErrorCode.INSUFFICIENT_FUNDS


async def test_a_wallet_id_in_another_currency_needs_a_quote(world: World) -> None:
    (alice, a), (_, dollars) = await world.person(), await world.person(USD)
    await world.deposit(alice, a, "100")
    error = await refused(world, send(alice, a, Recipient(wallet=dollars.id), "1"))
    assert (error.code, error.field) == (ErrorCode.QUOTE_REQUIRED, ("input", "quoteId"))


async def test_one_cannot_send_to_the_same_wallet(world: World) -> None:
    alice, a = await world.person()
    await world.deposit(alice, a, "100")
    error = await refused(world, send(alice, a, Recipient(email=alice.email), "1"))
    assert (error.code, error.field) == (ErrorCode.INVALID_INPUT, ("input", "to"))


async def test_across_currencies_the_recipient_gets_exactly_the_quoted_amount(
    world: World,
) -> None:
    (alice, a), (bob, b) = await world.person(), await world.person(USD)
    await world.deposit(alice, a, "50000")
    await world.rates_now()
    quote = await world.quotes.create(CreateQuote(alice, NGN, USD, target_amount=Decimal(10)))
    cmd = send(alice, a, Recipient(email=bob.email), str(quote.source.amount), quote=quote.id)
    outcome = await world.transfers.send(cmd)
    assert outcome.transaction.converted_amount == Decimal(10)
    assert (await world.balance(b))[0] == Decimal(10)
    again = await refused(
        world, send(alice, a, Recipient(email=bob.email), str(quote.source.amount), quote=quote.id)
    )
    assert again.code is ErrorCode.QUOTE_ALREADY_USED
    await world.verified()
