"""The pure ledger rules: balanced postings, non-negative customers, legal transitions."""

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.ledger import (
    LEGAL_TRANSITIONS,
    Posting,
    Transaction,
    TransactionKind,
    TransactionStatus,
    apply_postings,
    check_balanced,
    check_transition,
    display_name,
    hold,
    mask_email,
    new_reference,
    release,
    transfer_postings,
)
from stacklo.domain.models import AccountKind, Wallet, WalletStatus
from stacklo.domain.money import CurrencyCode, Money
from stacklo.domain.outcomes import request_hash

NOW = datetime(2026, 1, 1, tzinfo=UTC)
NGN = CurrencyCode.NGN


def wallet(balance: str = "0", kind: AccountKind = AccountKind.CUSTOMER, held: str = "0") -> Wallet:
    return Wallet(
        uuid.uuid4(),
        uuid.uuid4() if kind is AccountKind.CUSTOMER else None,
        NGN,
        Decimal(balance),
        Decimal(held),
        WalletStatus.ACTIVE,
        NOW,
        kind,
    )


cents = st.integers(min_value=1, max_value=10_000_000).map(lambda n: Decimal(n).scaleb(-2))


@settings(max_examples=300)
@given(
    balances=st.lists(st.integers(min_value=0, max_value=1_000_000), min_size=2, max_size=6),
    moves=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5), cents), max_size=30),
)
def test_random_transfers_conserve_money_and_never_go_negative(
    balances: list[int], moves: list[tuple[int, int, Decimal]]
) -> None:
    wallets = [wallet(str(b)) for b in balances]
    by_id = {w.id: w for w in wallets}
    total = sum(w.balance for w in wallets)
    running = {w.id: w.balance for w in wallets}
    for a, b, amount in moves:
        source, target = wallets[a % len(wallets)], wallets[b % len(wallets)]
        if source is target:
            continue
        before = (source.balance, target.balance)
        if before[0] < amount:
            with pytest.raises(DomainError) as refused:
                apply_postings(by_id, transfer_postings(source.id, target.id, Money(amount, NGN)))
            assert refused.value.code is ErrorCode.INSUFFICIENT_FUNDS
            assert (source.balance, target.balance) == before  # nothing applied
            continue
        entries = apply_postings(by_id, transfer_postings(source.id, target.id, Money(amount, NGN)))
        for entry in entries:
            running[entry.wallet_id] += entry.amount
            assert entry.balance_after == running[entry.wallet_id]
        assert sum(e.amount for e in entries) == 0
    assert sum(w.balance for w in wallets) == total
    assert all(w.balance >= 0 for w in wallets)


@given(st.lists(cents, min_size=1, max_size=10))
def test_platform_accounts_may_go_negative(amounts: list[Decimal]) -> None:
    clearing, customer = wallet(kind=AccountKind.PROVIDER_CLEARING), wallet()
    by_id = {clearing.id: clearing, customer.id: customer}
    for amount in amounts:
        apply_postings(
            by_id, [Posting(clearing.id, NGN, -amount), Posting(customer.id, NGN, amount)]
        )
    assert clearing.balance == -sum(amounts)
    assert customer.balance == sum(amounts)


def test_unbalanced_or_zero_postings_are_bugs() -> None:
    a, b = wallet("10"), wallet()
    with pytest.raises(ValueError, match="unbalanced"):
        check_balanced([Posting(a.id, NGN, Decimal("-1")), Posting(b.id, NGN, Decimal("2"))])
    with pytest.raises(ValueError, match="non-zero"):
        check_balanced([Posting(a.id, NGN, Decimal("0"))])
    with pytest.raises(ValueError, match="unbalanced"):
        check_balanced(
            [Posting(a.id, NGN, Decimal("-1")), Posting(b.id, CurrencyCode.USD, Decimal("1"))]
        )


def test_held_funds_cannot_be_spent_and_settle_on_payout() -> None:
    customer, clearing = wallet("100"), wallet(kind=AccountKind.PROVIDER_CLEARING)
    other = wallet()
    hold(customer, Money(Decimal("70"), NGN))
    assert customer.available_money.amount == Decimal("30")
    by_id = {w.id: w for w in (customer, clearing, other)}
    with pytest.raises(DomainError) as e:
        apply_postings(by_id, transfer_postings(customer.id, other.id, Money(Decimal("31"), NGN)))
    assert e.value.code is ErrorCode.INSUFFICIENT_FUNDS
    customer.balance = Decimal("100")  # the refused attempt is rolled back by the caller
    with pytest.raises(DomainError):
        hold(customer, Money(Decimal("31"), NGN))
    apply_postings(
        by_id,
        [
            Posting(customer.id, NGN, Decimal("-70"), release_hold=Decimal("70")),
            Posting(clearing.id, NGN, Decimal("70")),
        ],
    )
    assert (customer.balance, customer.held) == (Decimal("30"), Decimal("0"))
    with pytest.raises(ValueError, match="more than is held"):
        release(customer, Money(Decimal("1"), NGN))


@pytest.mark.parametrize("current", list(TransactionStatus))
@pytest.mark.parametrize("new", list(TransactionStatus))
def test_only_legal_transitions(current: TransactionStatus, new: TransactionStatus) -> None:
    legal = {
        TransactionStatus.CREATED: {"PROCESSING", "COMPLETED", "FAILED", "CANCELLED"},
        TransactionStatus.PROCESSING: {"COMPLETED", "FAILED", "CANCELLED"},
    }.get(current, set())
    assert {s.value for s in LEGAL_TRANSITIONS[current]} == legal
    if new.value in legal:
        check_transition(current, new)
    else:
        with pytest.raises(DomainError) as e:
            check_transition(current, new)
        assert e.value.code is ErrorCode.INVALID_STATE


def test_transaction_records_its_history() -> None:
    tx = Transaction.start(
        TransactionKind.DEPOSIT, Money(Decimal("5"), NGN), NOW, status=TransactionStatus.PROCESSING
    )
    tx.move_to(TransactionStatus.FAILED, NOW, "declined")
    assert [c.status for c in tx.history] == [
        TransactionStatus.CREATED,
        TransactionStatus.PROCESSING,
        TransactionStatus.FAILED,
    ]
    assert tx.failure_reason == "declined"
    with pytest.raises(DomainError):
        tx.move_to(TransactionStatus.COMPLETED, NOW)


def test_references_are_readable_and_distinct() -> None:
    refs = {new_reference() for _ in range(2000)}
    assert len(refs) == 2000
    assert all(re.fullmatch(r"TXN-[0-9A-HJKMNP-TV-Z]{8}", r) for r in refs)


def test_counterparty_masking() -> None:
    assert mask_email("ada.obi@example.com") == "a***@example.com"
    assert display_name("Ada Ngozi Obi") == "Ada O."
    assert display_name("Cher") == "Cher"


def test_request_hash_is_stable_and_sensitive() -> None:
    a = request_hash("sendMoney", {"amount": "1.00", "to": ["x", None, None]})
    assert a == request_hash("sendMoney", {"to": ["x", None, None], "amount": "1.00"})
    assert a != request_hash("sendMoney", {"amount": "1.01", "to": ["x", None, None]})
    assert a != request_hash("startDeposit", {"amount": "1.00", "to": ["x", None, None]})


def test_a_29_digit_eth_transfer_balances_to_the_wei() -> None:
    """Negating an amount in Python's default 28-digit context would round this one."""
    amount = Money(Decimal("10000000000.000000000000000001"), CurrencyCode.ETH)
    legs = transfer_postings(uuid.uuid4(), uuid.uuid4(), amount)
    check_balanced(legs)
    assert legs[0].amount == Decimal("-10000000000.000000000000000001")
    assert (-amount).amount == legs[0].amount


def test_no_posting_takes_an_account_past_the_ledgers_range() -> None:
    """NUMERIC(38, 18) holds 20 integer digits: a posting past it is LIMIT_EXCEEDED, not a
    database overflow (a 500) halfway through a movement."""
    rich = wallet("99999999999999999999")
    clearing = wallet("-99999999999999999999", kind=AccountKind.PROVIDER_CLEARING)
    legs = transfer_postings(clearing.id, rich.id, Money(Decimal("1"), NGN))
    with pytest.raises(DomainError) as refused:
        apply_postings({rich.id: rich, clearing.id: clearing}, legs)
    assert refused.value.code is ErrorCode.LIMIT_EXCEEDED
    assert rich.balance == Decimal("99999999999999999999")  # nothing applied to the refused leg
