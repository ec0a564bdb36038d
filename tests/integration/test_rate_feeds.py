"""The rate feeds: the sandbox random walk, and CoinbaseRateFeed against a fake Coinbase over
real HTTP on 127.0.0.1.

Durations are tiny and configured (timeouts, backoff, breaker open time), and assertions are on
what reached the server, never on precise timings. No database is needed.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from stacklo.domain.fx import Pair, Snapshot, round_rate
from stacklo.domain.money import MONEY_CONTEXT, CurrencyCode
from stacklo.domain.ports import ProviderUnavailable, RateFeed
from stacklo.integrations.rates import SANDBOX_START, CoinbaseRateFeed, SandboxRateFeed
from tests.fakes.rates_server import PATH, FakeCoinbase

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
THRESHOLD = 3
TTL = 0.2
ATTEMPTS = 3

C = CurrencyCode
USD_NGN = Pair(C.USD, C.NGN)
BTC_USD = Pair(C.BTC, C.USD)


# ------------------------------------------------------------------ sandbox


async def _walk(feed: SandboxRateFeed, ticks: int) -> list[Snapshot]:
    return [await feed.fetch(NOW + timedelta(seconds=i)) for i in range(ticks)]


async def test_sandbox_is_a_rate_feed_with_every_direct_pair_in_decimal() -> None:
    feed: RateFeed = SandboxRateFeed()
    snapshot = await feed.fetch(NOW)

    assert feed.name == snapshot.source == "sandbox"
    assert snapshot.at == NOW
    assert set(snapshot.mids) == {
        USD_NGN,
        Pair(C.GBP, C.USD),
        Pair(C.EUR, C.USD),
        BTC_USD,
        Pair(C.ETH, C.USD),
        Pair(C.USDT, C.USD),
    }
    assert all(type(m) is Decimal and m > 0 for m in snapshot.mids.values())
    # Every currency is reachable, so every supported pair has a (cross) rate.
    assert set(snapshot.usd_values()) == set(CurrencyCode)
    ngn_gbp = snapshot.mid(Pair(C.NGN, C.GBP))
    assert ngn_gbp is not None and Decimal("0.0003") < ngn_gbp < Decimal("0.0007")


async def test_sandbox_same_seed_same_snapshots_other_seed_other_snapshots() -> None:
    first = await _walk(SandboxRateFeed(seed=42), 200)
    again = await _walk(SandboxRateFeed(seed=42), 200)
    other = await _walk(SandboxRateFeed(seed=43), 200)

    assert [s.mids for s in first] == [s.mids for s in again]
    assert [s.to_dict() for s in first] == [s.to_dict() for s in again]  # same digits too
    assert [s.mids for s in first] != [s.mids for s in other]
    assert SandboxRateFeed(name="demo").name == "demo"


async def test_sandbox_moves_each_step_within_bounds_and_stays_near_start() -> None:
    limits = {
        USD_NGN: Decimal("0.0005"),
        Pair(C.GBP, C.USD): Decimal("0.0005"),
        Pair(C.EUR, C.USD): Decimal("0.0005"),
        BTC_USD: Decimal("0.003"),
        Pair(C.ETH, C.USD): Decimal("0.003"),
        Pair(C.USDT, C.USD): Decimal("0.0001"),
    }
    rounding = Decimal("1e-10")  # 12 significant digits of slack
    snapshots = await _walk(SandboxRateFeed(), 10_000)

    previous = dict(SANDBOX_START)
    widest = dict.fromkeys(limits, Decimal(0))
    for snapshot in snapshots:
        assert set(snapshot.mids) == set(limits)
        for pair, mid in snapshot.mids.items():
            assert type(mid) is Decimal
            assert mid == round_rate(mid)
            change = abs(MONEY_CONTEXT.divide(mid, previous[pair]) - 1)
            assert change <= limits[pair] + rounding, (pair, previous[pair], mid)
            deviation = abs(MONEY_CONTEXT.divide(mid, SANDBOX_START[pair]) - 1)
            assert deviation <= Decimal("0.2"), (pair, mid)
            widest[pair] = max(widest[pair], deviation)
            previous[pair] = mid

    # It is a walk, not a constant: every pair wandered, crypto more than fiat.
    assert all(w > 0 for w in widest.values())
    assert widest[BTC_USD] > widest[USD_NGN] > widest[Pair(C.USDT, C.USD)]
    assert widest[BTC_USD] > Decimal("0.01")
    assert widest[Pair(C.USDT, C.USD)] < Decimal("0.01")


# ------------------------------------------------------------------ Coinbase fixtures


def make_feed(base_url: str, **overrides: Any) -> CoinbaseRateFeed:
    settings: dict[str, Any] = {
        "timeout": 1.0,
        "attempts": ATTEMPTS,
        "breaker_threshold": THRESHOLD,
        "breaker_ttl": TTL,
        "retry_wait": 0,
        "retry_max_wait": 0,
    }
    settings.update(overrides)
    return CoinbaseRateFeed(base_url, **settings)


@pytest.fixture(scope="module")
def coinbase_server() -> Iterator[FakeCoinbase]:
    with FakeCoinbase(slow_seconds=3.0) as server:
        yield server


@pytest.fixture
def fake(coinbase_server: FakeCoinbase) -> FakeCoinbase:
    coinbase_server.reset()
    return coinbase_server


@pytest.fixture
async def feed(fake: FakeCoinbase) -> AsyncIterator[CoinbaseRateFeed]:
    async with make_feed(fake.base_url) as f:
        yield f


# ------------------------------------------------------------------ Coinbase happy path


async def test_coinbase_gives_usd_against_every_currency_exactly(
    fake: FakeCoinbase, feed: CoinbaseRateFeed
) -> None:
    port: RateFeed = feed  # the adapter satisfies the domain port
    snapshot = await port.fetch(NOW)

    assert (snapshot.source, snapshot.at) == ("coinbase", NOW)
    assert snapshot.mids == {
        USD_NGN: Decimal("1550.12345679"),  # 12 significant digits, half-even
        Pair(C.USD, C.GBP): Decimal("0.787401574803"),
        Pair(C.USD, C.EUR): Decimal("0.92"),
        Pair(C.USD, C.BTC): Decimal("0.0000105"),
        Pair(C.USD, C.ETH): Decimal("0.000294117647059"),
        Pair(C.USD, C.USDT): Decimal("1"),
    }
    assert all(type(m) is Decimal for m in snapshot.mids.values())
    # The inverse comes out of the domain's own arithmetic.
    eur_usd = round_rate(MONEY_CONTEXT.divide(1, Decimal("0.92")))
    assert snapshot.mid(Pair(C.EUR, C.USD)) == eur_usd

    [request] = fake.requests
    assert (request.method, request.path, request.query) == ("GET", PATH, {"currency": "USD"})


async def test_coinbase_through_a_custom_transport_touches_no_network() -> None:
    seen: list[httpx.URL] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        rates = {c.value: "2" for c in CurrencyCode}
        return httpx.Response(200, json={"data": {"currency": "USD", "rates": rates}})

    transport = httpx.MockTransport(answer)
    async with make_feed("https://api.coinbase.com", transport=transport) as f:
        snapshot = await f.fetch(NOW)
    assert set(snapshot.mids.values()) == {Decimal(2)}
    assert [str(u) for u in seen] == ["https://api.coinbase.com/v2/exchange-rates?currency=USD"]


# ------------------------------------------------------------------ unusable answers


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("malformed", "not JSON"),
        ("float_rates", "is a JSON"),
        ("missing_currency", "no rate for NGN"),
        ("wrong_currency", "against 'EUR'"),
        ("not_found", "HTTP 404"),
    ],
)
async def test_unusable_answers_are_unavailable_and_not_retried(
    fake: FakeCoinbase, feed: CoinbaseRateFeed, mode: Any, message: str
) -> None:
    fake.mode = mode
    with pytest.raises(ProviderUnavailable, match=message):
        await feed.fetch(NOW)
    assert fake.count() == 1  # the same request would get the same answer


@pytest.mark.parametrize(
    "rate", ["0", "0.000", "-0.92", "abc", "", "NaN", "Infinity", " 0.92", "1_000", "0x10"]
)
async def test_a_bad_rate_string_is_unavailable(
    fake: FakeCoinbase, feed: CoinbaseRateFeed, rate: str
) -> None:
    fake.rates["EUR"] = rate
    with pytest.raises(ProviderUnavailable, match="rate for EUR"):
        await feed.fetch(NOW)


async def test_a_json_integer_rate_is_refused_too() -> None:
    def integer_rate(request: httpx.Request) -> httpx.Response:
        rates: dict[str, object] = {c.value: "1" for c in CurrencyCode}
        rates["NGN"] = 1550
        return httpx.Response(200, json={"data": {"currency": "USD", "rates": rates}})

    async with make_feed("http://127.0.0.1:9", transport=httpx.MockTransport(integer_rate)) as f:
        with pytest.raises(ProviderUnavailable, match="NGN is a JSON int"):
            await f.fetch(NOW)


async def test_unsupported_currencies_in_the_answer_are_ignored(
    fake: FakeCoinbase, feed: CoinbaseRateFeed
) -> None:
    fake.rates["JPY"] = "not even a number"
    snapshot = await feed.fetch(NOW)
    assert {p.quote for p in snapshot.mids} == set(CurrencyCode) - {C.USD}


# ------------------------------------------------------------------ outages and retries


@pytest.mark.parametrize(("mode", "message"), [("error500", "HTTP 500"), ("error429", "HTTP 429")])
async def test_5xx_and_429_are_retried_then_unavailable(
    fake: FakeCoinbase, feed: CoinbaseRateFeed, mode: Any, message: str
) -> None:
    fake.mode = mode
    with pytest.raises(ProviderUnavailable, match=message):
        await feed.fetch(NOW)
    assert fake.count() == ATTEMPTS


async def test_a_5xx_then_success_is_retried_into_a_snapshot(
    fake: FakeCoinbase, feed: CoinbaseRateFeed
) -> None:
    fake.fail_next(ATTEMPTS - 1)
    snapshot = await feed.fetch(NOW)
    assert snapshot.mids[USD_NGN] == Decimal("1550.12345679")
    assert fake.count() == ATTEMPTS
    assert feed.circuit_state == "closed"


async def test_a_timeout_is_retried_then_unavailable(fake: FakeCoinbase) -> None:
    fake.mode = "slow"
    async with make_feed(fake.base_url, timeout=0.2, attempts=2) as f:
        with pytest.raises(ProviderUnavailable, match="timed out"):
            await f.fetch(NOW)
    assert fake.count() == 2


async def test_a_connection_error_is_retried_then_unavailable() -> None:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens on it
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with make_feed(f"http://127.0.0.1:{port}") as f:
        with pytest.raises(ProviderUnavailable, match="cannot reach"):
            await f.fetch(NOW)


async def test_backoff_waits_are_used_when_configured(fake: FakeCoinbase) -> None:
    fake.fail_next(2)
    loop = asyncio.get_running_loop()
    async with make_feed(fake.base_url, retry_wait=0.05, retry_max_wait=0.05) as f:
        started = loop.time()
        await f.fetch(NOW)
        elapsed = loop.time() - started
    assert fake.count() == 3
    assert elapsed >= 0.09  # two waits of at least 0.05 s (jitter only adds)


# ------------------------------------------------------------------ circuit breaker


async def test_one_fetch_with_its_retries_is_one_failure(
    fake: FakeCoinbase, feed: CoinbaseRateFeed
) -> None:
    fake.mode = "error500"
    for _ in range(THRESHOLD - 1):
        with pytest.raises(ProviderUnavailable, match="HTTP 500"):
            await feed.fetch(NOW)
    assert fake.count() == (THRESHOLD - 1) * ATTEMPTS
    assert feed.circuit_state == "closed"


async def test_the_breaker_opens_fails_fast_then_recovers(
    fake: FakeCoinbase, feed: CoinbaseRateFeed
) -> None:
    fake.mode = "error500"
    for _ in range(THRESHOLD):
        with pytest.raises(ProviderUnavailable, match="HTTP 500"):
            await feed.fetch(NOW)
    assert feed.circuit_state == "opened"
    sent = fake.count()
    assert sent == THRESHOLD * ATTEMPTS

    fake.mode = "ok"
    for _ in range(5):
        with pytest.raises(ProviderUnavailable, match="circuit open"):
            await feed.fetch(NOW)
    assert fake.count() == sent  # failed fast: nothing reached the server

    await asyncio.sleep(TTL + 0.1)
    snapshot = await feed.fetch(NOW)
    assert snapshot.source == "coinbase"
    assert fake.count() == sent + 1
    assert feed.circuit_state == "closed"


async def test_a_failed_trial_fetch_reopens_the_breaker(
    fake: FakeCoinbase, feed: CoinbaseRateFeed
) -> None:
    fake.mode = "malformed"  # unusable answers count as failures too
    for _ in range(THRESHOLD):
        with pytest.raises(ProviderUnavailable):
            await feed.fetch(NOW)
    assert feed.circuit_state == "opened"
    await asyncio.sleep(TTL + 0.1)

    with pytest.raises(ProviderUnavailable, match="not JSON"):  # the half-open trial
        await feed.fetch(NOW)
    assert fake.count() == THRESHOLD + 1
    assert feed.circuit_state == "opened"
    with pytest.raises(ProviderUnavailable, match="circuit open"):
        await feed.fetch(NOW)
    assert fake.count() == THRESHOLD + 1


async def test_a_success_resets_the_run_of_failures(
    fake: FakeCoinbase, feed: CoinbaseRateFeed
) -> None:
    for _ in range(3):
        fake.mode = "error429"
        for _ in range(THRESHOLD - 1):
            with pytest.raises(ProviderUnavailable):
                await feed.fetch(NOW)
        fake.mode = "ok"
        await feed.fetch(NOW)
    assert feed.circuit_state == "closed"


@pytest.mark.parametrize(
    "bad",
    [
        {"timeout": 0},
        {"attempts": 0},
        {"breaker_threshold": 0},
        {"breaker_ttl": 0},
        {"retry_wait": -1},
    ],
)
def test_nonsense_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"must be|cannot be"):
        CoinbaseRateFeed("http://127.0.0.1:9", **bad)
