"""PaystackProvider against a fake Paystack over real HTTP on 127.0.0.1.

Durations are tiny and configured (timeouts, backoff, breaker open time), and assertions are on
what reached the server, never on precise timings. No database is needed.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from stacklo.domain.money import CurrencyCode, Money
from stacklo.domain.ports import (
    BankAccount,
    PaymentProvider,
    PayoutStatus,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderUnavailable,
)
from stacklo.integrations.paystack import (
    MalformedEvent,
    PaystackProvider,
    parse_event,
    sign,
    to_minor_units,
    verify_signature,
)
from tests.fakes.paystack_server import FakePaystack

SECRET = "sk_test_" + "f" * 40
THRESHOLD = 3
OPEN_SECONDS = 0.2
INIT = "/transaction/initialize"
ACCOUNT = BankAccount(bank_code="058", account_number="0123456789", account_name="Ada Obi")


def ngn(amount: str) -> Money:
    return Money(Decimal(amount), CurrencyCode.NGN)


def make_provider(base_url: str, **overrides: Any) -> PaystackProvider:
    settings: dict[str, Any] = {
        "base_url": base_url,
        "connect_timeout": 1.0,
        "read_timeout": 1.0,
        "max_attempts": 3,
        "retry_wait": 0,
        "retry_max_wait": 0,
        "failure_threshold": THRESHOLD,
        "open_seconds": OPEN_SECONDS,
    }
    settings.update(overrides)
    return PaystackProvider(SECRET, **settings)


@pytest.fixture(scope="module")
def paystack_server() -> Iterator[FakePaystack]:
    with FakePaystack(SECRET, slow_seconds=3.0) as server:
        yield server


@pytest.fixture
def fake(paystack_server: FakePaystack) -> FakePaystack:
    paystack_server.reset()
    return paystack_server


@pytest.fixture
async def provider(fake: FakePaystack) -> AsyncIterator[PaystackProvider]:
    async with make_provider(fake.base_url) as p:
        yield p


# ------------------------------------------------------------------ happy paths


async def test_initialize_returns_checkout_url_and_sends_minor_units(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    port: PaymentProvider = provider  # the adapter satisfies the domain port
    url = await port.initialize_deposit("dep_0001", ngn("1500.50"), "ada@example.com")

    assert url.startswith(fake.base_url + "/pay/")
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", INIT)
    assert request.authorization == f"Bearer {SECRET}"
    assert request.json == {
        "email": "ada@example.com",
        "amount": 150050,
        "currency": "NGN",
        "reference": "dep_0001",
    }
    assert type(request.json["amount"]) is int
    async with httpx.AsyncClient() as client:
        page = await client.get(url)
    assert page.status_code == 200


async def test_callback_url_is_sent_when_configured(fake: FakePaystack) -> None:
    async with make_provider(fake.base_url, callback_url="https://app.example/done") as p:
        await p.initialize_deposit("dep_cb", ngn("10"), "ada@example.com")
    assert fake.requests[0].json["callback_url"] == "https://app.example/done"


@pytest.mark.parametrize("mode", ["timeout", "drop", "error500"])
async def test_a_transfer_whose_answer_is_lost_has_an_unknown_outcome(
    fake: FakePaystack, mode: str
) -> None:
    fake.hang_seconds = 1.0
    fake.mode, fake.mode_path = mode, "/transfer"  # type: ignore[assignment]
    async with make_provider(fake.base_url, read_timeout=0.2) as p:
        with pytest.raises(ProviderOutcomeUnknown):
            await p.payout("wd_lost", ngn("10"), ACCOUNT, "Withdrawal")
        fake.mode = "ok"
        made = "wd_lost" in fake.transfers()
        assert made is (mode != "error500")  # timeout and drop act, then lose the answer
        assert await p.payout_status("wd_lost") is (
            PayoutStatus.PENDING if made else PayoutStatus.NOT_FOUND
        )
        if made:
            fake.settle_transfer("wd_lost", "reversed")
            assert await p.payout_status("wd_lost") is PayoutStatus.REVERSED
    assert fake.count("POST", "/transfer") == 1  # never sent twice


async def test_a_payout_refused_before_the_transfer_is_plainly_unavailable(
    fake: FakePaystack,
) -> None:
    fake.go_down()
    try:
        async with make_provider(fake.base_url, connect_timeout=0.3) as p:
            with pytest.raises(ProviderUnavailable) as e:
                await p.payout("wd_down", ngn("10"), ACCOUNT, "Withdrawal")
            assert not isinstance(e.value, ProviderOutcomeUnknown)
    finally:
        fake.come_back()


async def test_payout_creates_recipient_then_transfer_with_our_reference(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    code = await provider.payout("wd_0001", ngn("2500"), ACCOUNT, "Withdrawal")

    assert code.startswith("TRF_")
    recipient, transfer = fake.requests
    assert (recipient.method, recipient.path) == ("POST", "/transferrecipient")
    assert recipient.json == {
        "type": "nuban",
        "name": "Ada Obi",
        "account_number": "0123456789",
        "bank_code": "058",
        "currency": "NGN",
    }
    assert (transfer.method, transfer.path) == ("POST", "/transfer")
    assert transfer.json["source"] == "balance"
    assert transfer.json["amount"] == 250000
    assert transfer.json["reference"] == "wd_0001"
    assert transfer.json["reason"] == "Withdrawal"
    assert transfer.json["recipient"].startswith("RCP_")
    assert all(r.authorization == f"Bearer {SECRET}" for r in fake.requests)


async def test_verify_deposit_reports_status_amount_and_currency(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    await provider.initialize_deposit("dep_v1", ngn("99.99"), "ada@example.com")
    pending = await provider.verify_deposit("dep_v1")
    assert (pending.status, pending.succeeded) == ("abandoned", False)

    fake.mark_paid("dep_v1")
    paid = await provider.verify_deposit("dep_v1")
    assert paid.succeeded
    assert (paid.reference, paid.amount_minor, paid.currency) == ("dep_v1", 9999, "NGN")
    assert paid.provider_id
    assert fake.requests[-1].path == "/transaction/verify/dep_v1"


# ------------------------------------------------------------------ rejections (4xx)


async def test_4xx_is_rejected_with_paystacks_message_and_does_not_trip_the_breaker(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    fake.mode = "reject"
    for i in range(THRESHOLD + 2):
        with pytest.raises(ProviderRejected, match="Declined by the fake Paystack"):
            await provider.initialize_deposit(f"dep_r{i}", ngn("10"), "ada@example.com")
    assert fake.count("POST", INIT) == THRESHOLD + 2  # every call reached the server, none retried
    assert provider.circuit_state == "closed"

    fake.mode = "ok"
    await provider.initialize_deposit("dep_r_ok", ngn("10"), "ada@example.com")


async def test_status_false_with_200_is_rejected(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    fake.mode = "status_false"
    with pytest.raises(ProviderRejected, match="Declined with a 200"):
        await provider.initialize_deposit("dep_sf", ngn("10"), "ada@example.com")


async def test_wrong_secret_is_rejected(fake: FakePaystack) -> None:
    async with PaystackProvider("sk_test_wrong", base_url=fake.base_url, retry_wait=0) as p:
        with pytest.raises(ProviderRejected, match="Invalid key"):
            await p.initialize_deposit("dep_k", ngn("10"), "ada@example.com")


async def test_validation_errors_from_paystack_are_rejections(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    bad = BankAccount(bank_code="058", account_number="12", account_name="Ada Obi")
    with pytest.raises(ProviderRejected, match="Account number is invalid"):
        await provider.payout("wd_bad", ngn("10"), bad, "Withdrawal")
    assert fake.count("POST", "/transfer") == 0

    await provider.initialize_deposit("dep_dup", ngn("10"), "ada@example.com")
    with pytest.raises(ProviderRejected, match="Duplicate Transaction Reference"):
        await provider.initialize_deposit("dep_dup", ngn("10"), "ada@example.com")


async def test_fake_refuses_a_non_integer_amount(fake: FakePaystack) -> None:
    # The fake holds the adapter to Paystack's contract: amounts are integers in minor units.
    async with httpx.AsyncClient(base_url=fake.base_url) as client:
        answer = await client.post(
            INIT,
            json={"email": "ada@example.com", "amount": 1500.5, "reference": "dep_f"},
            headers={"Authorization": f"Bearer {SECRET}"},
        )
    assert answer.status_code == 400
    assert answer.json() == {"status": False, "message": "Invalid Amount Sent"}


# ------------------------------------------------------------------ outages and retries


async def test_500_is_unavailable_and_a_post_is_not_retried(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    fake.fail_next(1)
    with pytest.raises(ProviderUnavailable):
        await provider.initialize_deposit("dep_500", ngn("10"), "ada@example.com")
    assert fake.count("POST", INIT) == 1

    url = await provider.initialize_deposit("dep_500b", ngn("10"), "ada@example.com")
    assert url.startswith(fake.base_url)


async def test_payout_transfer_post_is_not_retried_after_a_500(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    fake.fail_next(1, path="/transfer")
    with pytest.raises(ProviderUnavailable):
        await provider.payout("wd_500", ngn("10"), ACCOUNT, "Withdrawal")
    assert fake.count("POST", "/transferrecipient") == 1
    assert fake.count("POST", "/transfer") == 1  # may have moved money: never resent


async def test_payout_recipient_failure_sends_no_transfer(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    fake.mode = "error500"
    with pytest.raises(ProviderUnavailable):
        await provider.payout("wd_500", ngn("10"), ACCOUNT, "Withdrawal")
    assert fake.count() == 1


async def test_get_verify_is_retried_after_transient_500s(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    await provider.initialize_deposit("dep_r", ngn("42"), "ada@example.com")
    fake.mark_paid("dep_r")
    fake.fail_next(2)

    result = await provider.verify_deposit("dep_r")

    assert result.succeeded and result.amount_minor == 4200
    assert fake.count("GET", "/transaction/verify/dep_r") == 3
    assert provider.circuit_state == "closed"


async def test_get_gives_up_after_max_attempts(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    fake.mode = "error500"
    with pytest.raises(ProviderUnavailable):
        await provider.verify_deposit("dep_missing")
    assert fake.count("GET") == 3


async def test_timeout_is_unavailable_quickly(fake: FakePaystack) -> None:
    fake.mode = "slow"  # the fake sleeps 3 s
    async with make_provider(fake.base_url, read_timeout=0.2) as p:
        started = time.monotonic()
        with pytest.raises(ProviderUnavailable, match="timed out"):
            await p.initialize_deposit("dep_slow", ngn("10"), "ada@example.com")
        assert time.monotonic() - started < 2.0
    assert fake.count("POST", INIT) == 1  # a POST that may have arrived is never resent


async def test_connect_errors_are_retried_even_for_a_post(fake: FakePaystack) -> None:
    with socket.socket() as s:  # a port with nobody listening: the request never leaves
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    attempts: list[str] = []

    async def count(request: httpx.Request) -> None:
        attempts.append(request.url.path)

    async with make_provider(f"http://127.0.0.1:{port}", connect_timeout=0.5) as p:
        p._client.event_hooks["request"].append(count)  # observe attempts that never connect
        with pytest.raises(ProviderUnavailable, match="cannot connect"):
            await p.initialize_deposit("dep_down", ngn("10"), "ada@example.com")
    assert attempts == [INIT] * 3


# ------------------------------------------------------------------ circuit breaker


async def test_consecutive_failures_open_the_circuit_then_it_recovers(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    fake.mode = "error500"
    for i in range(THRESHOLD):
        with pytest.raises(ProviderUnavailable):
            await provider.initialize_deposit(f"dep_o{i}", ngn("10"), "ada@example.com")
    assert fake.count() == THRESHOLD
    assert provider.circuit_state == "opened"

    fake.mode = "ok"
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await provider.initialize_deposit("dep_fast", ngn("10"), "ada@example.com")
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await provider.verify_deposit("dep_fast")
    assert fake.count() == THRESHOLD  # failed fast: nothing reached the server

    await asyncio.sleep(OPEN_SECONDS + 0.1)
    url = await provider.initialize_deposit("dep_back", ngn("10"), "ada@example.com")
    assert url.startswith(fake.base_url)
    assert fake.count() == THRESHOLD + 1
    assert provider.circuit_state == "closed"


async def test_a_failed_trial_call_reopens_the_circuit(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    fake.mode = "error500"
    for i in range(THRESHOLD):
        with pytest.raises(ProviderUnavailable):
            await provider.initialize_deposit(f"dep_h{i}", ngn("10"), "ada@example.com")
    await asyncio.sleep(OPEN_SECONDS + 0.1)

    with pytest.raises(ProviderUnavailable):  # half-open: one trial call, which fails
        await provider.initialize_deposit("dep_trial", ngn("10"), "ada@example.com")
    assert fake.count() == THRESHOLD + 1
    assert provider.circuit_state == "opened"
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await provider.initialize_deposit("dep_again", ngn("10"), "ada@example.com")
    assert fake.count() == THRESHOLD + 1


async def test_a_success_resets_the_run_of_failures(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    for i in range(3):
        fake.fail_next(THRESHOLD - 1)
        for j in range(THRESHOLD - 1):
            with pytest.raises(ProviderUnavailable):
                await provider.initialize_deposit(f"dep_s{i}{j}", ngn("10"), "ada@example.com")
        await provider.initialize_deposit(f"dep_s{i}", ngn("10"), "ada@example.com")
    assert provider.circuit_state == "closed"


# ------------------------------------------------------------------ money


@pytest.mark.parametrize(
    ("amount", "code", "minor"),
    [
        ("1500.50", CurrencyCode.NGN, 150050),
        ("1500.5", CurrencyCode.NGN, 150050),
        ("7", CurrencyCode.USD, 700),
        ("0.00000001", CurrencyCode.BTC, 1),
        (
            "12345678901234567890.123456789012345678",
            CurrencyCode.ETH,
            12345678901234567890123456789012345678,
        ),
        ("1.5E+3", CurrencyCode.NGN, 150000),
    ],
)
def test_minor_units_are_exact(amount: str, code: CurrencyCode, minor: int) -> None:
    assert to_minor_units(Money(Decimal(amount), code)) == minor


@pytest.mark.parametrize(
    ("amount", "code"),
    [("10.001", CurrencyCode.NGN), ("0.000000001", CurrencyCode.BTC), ("NaN", CurrencyCode.USD)],
)
def test_more_decimals_than_the_currency_raise(amount: str, code: CurrencyCode) -> None:
    with pytest.raises(ValueError, match=r"decimals|not finite"):
        to_minor_units(Money(Decimal(amount), code))


async def test_bad_amounts_never_reach_paystack(
    fake: FakePaystack, provider: PaystackProvider
) -> None:
    with pytest.raises(ValueError, match="decimals"):
        await provider.initialize_deposit("dep_d", ngn("10.005"), "ada@example.com")
    with pytest.raises(ValueError, match="decimals"):
        await provider.payout("wd_d", ngn("0.001"), ACCOUNT, "Withdrawal")
    with pytest.raises(ValueError, match="positive"):
        await provider.initialize_deposit("dep_z", ngn("0"), "ada@example.com")
    assert fake.requests == []


# ------------------------------------------------------------------ webhooks


def body(event: str, **data: Any) -> bytes:
    return json.dumps({"event": event, "data": data}).encode()


def test_signature_valid_passes() -> None:
    raw = body("charge.success", reference="dep_1", amount=100, currency="NGN", id=1)
    assert verify_signature(SECRET, raw, sign(SECRET, raw))


def test_signature_tampered_body_fails() -> None:
    raw = body("charge.success", reference="dep_1", amount=100, currency="NGN", id=1)
    signature = sign(SECRET, raw)
    tampered = raw.replace(b"100", b"900")
    assert not verify_signature(SECRET, tampered, signature)


@pytest.mark.parametrize("signature", [None, "", "not-hex", "é" * 128])
def test_signature_missing_or_garbage_fails(signature: str | None) -> None:
    raw = body("charge.success", reference="dep_1", amount=100, currency="NGN", id=1)
    assert not verify_signature(SECRET, raw, signature)


def test_signature_with_another_key_or_no_key_fails() -> None:
    raw = b'{"event": "charge.success"}'
    assert not verify_signature(SECRET, raw, sign("sk_test_other", raw))
    assert not verify_signature("", raw, sign("", raw))


def test_parse_charge_success() -> None:
    raw = body(
        "charge.success",
        id=302961,
        reference="dep_1",
        amount=150050,
        currency="NGN",
        status="success",
    )
    event = parse_event(raw)
    assert event is not None
    assert (event.name, event.reference, event.amount_minor, event.currency, event.provider_id) == (
        "charge.success",
        "dep_1",
        150050,
        "NGN",
        "302961",
    )
    assert event.raw == json.loads(raw)


@pytest.mark.parametrize("kind", ["transfer.success", "transfer.failed", "transfer.reversed"])
def test_parse_transfer_events_use_the_transfer_code(kind: str) -> None:
    raw = body(
        kind, id=99, transfer_code="TRF_abc", reference="wd_1", amount=250000, currency="NGN"
    )
    event = parse_event(raw)
    assert event is not None
    assert (event.name, event.reference, event.amount_minor, event.provider_id) == (
        kind,
        "wd_1",
        250000,
        "TRF_abc",
    )


def test_parse_transfer_event_without_code_falls_back_to_id() -> None:
    raw = body("transfer.success", id=99, reference="wd_1", amount=1, currency="NGN")
    event = parse_event(raw)
    assert event is not None and event.provider_id == "99"


@pytest.mark.parametrize(
    "raw",
    [
        body("subscription.create", reference="x", amount=1, currency="NGN", id=1),
        body("customeridentification.success", id=1),
        b"not json",
        b"",
        b"\xff\xfe\x00",
        b"[]",
        b'{"event": {"nested": 1}, "data": {}}',
        b"[" * 100_000,
        b'{"event": "charge.success", "data": {"reference": "d", "amount": NaN, "currency": "NGN", "id": 1}}',
    ],
)
def test_parse_ignores_unknown_events_and_bodies_that_are_not_events(raw: bytes) -> None:
    assert parse_event(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        b'{"event": "charge.success"}',
        b'{"event": "charge.success", "data": []}',
        body("charge.success", reference="", amount=1, currency="NGN", id=1),
        body("charge.success", reference="d\x00x", amount=1, currency="NGN", id=1),
        body("charge.success", reference="r" * 5000, amount=1, currency="NGN", id=1),
        body("charge.success", reference="d e", amount=1, currency="NGN", id=1),
        body("charge.success", reference="d", amount="100", currency="NGN", id=1),
        body("charge.success", reference="d", amount=1.5, currency="NGN", id=1),
        body("charge.success", reference="d", amount=True, currency="NGN", id=1),
        body("charge.success", reference="d", amount=-1, currency="NGN", id=1),
        body("charge.success", reference="d", amount=10**40, currency="NGN", id=1),
        body("charge.success", reference="d", amount=1, id=1),
        body("charge.success", reference="d", amount=1, currency="N\x00G", id=1),
        body("charge.success", reference="d", amount=1, currency="NGN"),
    ],
)
def test_parse_refuses_our_events_with_unusable_fields(raw: bytes) -> None:
    with pytest.raises(MalformedEvent):
        parse_event(raw)


def test_constructor_refuses_settings_purgatory_would_misread() -> None:
    with pytest.raises(ValueError, match="open_seconds"):
        PaystackProvider(SECRET, open_seconds=0)
    with pytest.raises(ValueError, match="failure_threshold"):
        PaystackProvider(SECRET, failure_threshold=0)
    with pytest.raises(ValueError, match="secret"):
        PaystackProvider("")


def test_repr_hides_the_secret() -> None:
    assert SECRET not in repr(PaystackProvider(SECRET))
