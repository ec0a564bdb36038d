"""Rate feeds: the ``RateFeed`` port of ``domain.ports``, implemented twice.

``SandboxRateFeed``
    A seeded, reproducible random walk around realistic mids, for the embedded default, demos
    and tests. No I/O. Direct pairs: USD/NGN, GBP/USD, EUR/USD, BTC/USD, ETH/USD, USDT/USD.
    Every ``fetch`` moves every pair one step: at most 0.05% for fiat, 0.3% for BTC/ETH and
    0.01% for USDT, with a mild pull back toward the starting mid (mean reversion) so the rates
    stay plausible over days of ticks. The arithmetic is exact: integers drawn from
    ``random.Random(seed)`` become ``Decimal`` steps in parts per million; no float is involved,
    so one seed gives the same sequence of snapshots on every machine.

``CoinbaseRateFeed``
    Coinbase's public, keyless endpoint ``GET {base_url}/v2/exchange-rates?currency=USD``,
    answering ``{"data": {"currency": "USD", "rates": {"NGN": "1550.12", "BTC": "0.0000105",
    ...}}}`` where each rate is a *string* meaning "1 USD = x CODE". Every supported currency
    other than USD becomes the direct pair ``USD/X`` with ``mid = round_rate(Decimal(x))``. The
    snapshot is stamped with the ``now`` given to ``fetch`` (Coinbase gives no observation time).

Failure policy of ``CoinbaseRateFeed.fetch``, which callers rely on: it returns a complete
snapshot or raises ``ProviderUnavailable`` with a message saying why; never a partial snapshot.

* Retried (it is a GET, so resending is harmless), up to ``attempts`` tries with exponential
  backoff plus jitter: connection errors, timeouts, other transport errors, HTTP 5xx and 429.
* Not retried, because the same request would get the same answer: any other non-2xx status
  (including redirects, which are not followed), a body that is not a JSON object, a
  ``currency`` other than USD, a missing supported currency, and a rate that is not a string
  holding a finite positive decimal. A JSON number is refused too: Coinbase sends strings, and
  a number would have gone through binary floating point somewhere on the way.
* A circuit breaker (purgatory, in memory, per instance) wraps each logical call, retries
  included, so one failed ``fetch`` is one failure. After ``breaker_threshold`` consecutive
  failed fetches it opens; while open, ``fetch`` fails at once without touching the network.
  After ``breaker_ttl`` seconds the next fetch is a trial: success closes it, failure reopens it.

The rate ticker (``realtime/feed.py``) treats ``ProviderUnavailable`` as "no reading this tick";
the last snapshot keeps serving until it is older than the configured maximum age.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Final

import httpx
import structlog

from stacklo.domain.fx import ANCHOR, Pair, Snapshot, round_rate
from stacklo.domain.money import MONEY_CONTEXT, CurrencyCode
from stacklo.domain.ports import ProviderUnavailable
from stacklo.integrations.breaker import BreakerClient

if TYPE_CHECKING:
    from stacklo.domain.ports import RateFeed

__all__ = [
    "COINBASE_PATH",
    "DEFAULT_COINBASE_URL",
    "SANDBOX_START",
    "CoinbaseRateFeed",
    "SandboxRateFeed",
]

log = structlog.get_logger("stacklo.integrations.rates")

DEFAULT_COINBASE_URL: Final = "https://api.coinbase.com"
COINBASE_PATH: Final = "/v2/exchange-rates"

# ------------------------------------------------------------------------------ sandbox

_PPM: Final = Decimal(1_000_000)

#: Starting mids of the sandbox's direct pairs.
SANDBOX_START: Final[Mapping[Pair, Decimal]] = {
    Pair(CurrencyCode.USD, CurrencyCode.NGN): Decimal("1550"),
    Pair(CurrencyCode.GBP, CurrencyCode.USD): Decimal("1.27"),
    Pair(CurrencyCode.EUR, CurrencyCode.USD): Decimal("1.08"),
    Pair(CurrencyCode.BTC, CurrencyCode.USD): Decimal("95000"),
    Pair(CurrencyCode.ETH, CurrencyCode.USD): Decimal("3400"),
    Pair(CurrencyCode.USDT, CurrencyCode.USD): Decimal("1.0000"),
}

# Largest move per step, in parts per million: fiat 0.05%, crypto 0.3%, the stablecoin 0.01%.
_FIAT_STEP_PPM: Final = 500
_CRYPTO_STEP_PPM: Final = 3_000
_STABLE_STEP_PPM: Final = 100
_MAX_STEP_PPM: Final[Mapping[Pair, int]] = {
    Pair(CurrencyCode.USD, CurrencyCode.NGN): _FIAT_STEP_PPM,
    Pair(CurrencyCode.GBP, CurrencyCode.USD): _FIAT_STEP_PPM,
    Pair(CurrencyCode.EUR, CurrencyCode.USD): _FIAT_STEP_PPM,
    Pair(CurrencyCode.BTC, CurrencyCode.USD): _CRYPTO_STEP_PPM,
    Pair(CurrencyCode.ETH, CurrencyCode.USD): _CRYPTO_STEP_PPM,
    Pair(CurrencyCode.USDT, CurrencyCode.USD): _STABLE_STEP_PPM,
}
# Each step, the walk drifts back by this share of its distance from the start. With steps
# uniform in +-m, the deviation settles around m/sqrt(6 * share) (about 1.7% for crypto, 0.3%
# for fiat), which is a realistic day's range, and it stays there however long the walk runs.
_REVERSION: Final = Decimal("0.005")


class SandboxRateFeed:
    """``RateFeed`` from a seeded random walk; the same seed gives the same snapshots."""

    def __init__(self, seed: int = 7, name: str = "sandbox") -> None:
        self.name = name
        # Reproducible simulation, not secrecy: a seeded PRNG is exactly what is wanted.
        self._random = random.Random(seed)  # noqa: S311
        self._mids: dict[Pair, Decimal] = dict(SANDBOX_START)

    async def fetch(self, now: datetime) -> Snapshot:
        """Advance every pair one step and return the new mids, stamped ``now``."""
        for pair, start in SANDBOX_START.items():
            self._mids[pair] = self._step(self._mids[pair], start, _MAX_STEP_PPM[pair])
        return Snapshot(dict(self._mids), now, self.name)

    def _step(self, mid: Decimal, start: Decimal, max_ppm: int) -> Decimal:
        ctx = MONEY_CONTEXT
        shock = Decimal(self._random.randint(-max_ppm, max_ppm))
        deviation_ppm = ctx.multiply(ctx.divide(ctx.subtract(mid, start), start), _PPM)
        pull = ctx.multiply(-deviation_ppm, _REVERSION)
        limit = Decimal(max_ppm)
        move_ppm = max(-limit, min(limit, ctx.add(shock, pull)))
        factor = ctx.add(Decimal(1), ctx.divide(move_ppm, _PPM))
        return round_rate(ctx.multiply(mid, factor))


# ------------------------------------------------------------------------------ Coinbase


class _Transient(ProviderUnavailable):
    """A failed attempt that another attempt may fix (transport error, 5xx, 429)."""


class CoinbaseRateFeed(BreakerClient):
    """``RateFeed`` over Coinbase's public exchange-rates endpoint (see the module docstring).

    One instance per process: it owns the HTTP connection pool and the breaker state. Close it
    with ``aclose()`` or use it as an async context manager.
    """

    name = "coinbase"

    def __init__(
        self,
        base_url: str = DEFAULT_COINBASE_URL,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        breaker_threshold: int = 5,
        breaker_ttl: float = 30.0,
        retry_wait: float = 0.2,
        retry_max_wait: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """
        Args:
            base_url: API root; tests point it at a local fake.
            timeout: seconds for each of connect, read, write and pool, per attempt.
            attempts: tries per fetch for retryable failures (1 disables retries).
            breaker_threshold: consecutive failed fetches that open the circuit.
            breaker_ttl: seconds the circuit stays open before a trial fetch is let through.
            retry_wait / retry_max_wait: exponential backoff (``retry_wait * 2**n`` plus up to
                ``retry_wait`` of jitter, capped at ``retry_max_wait``); 0 in tests.
            transport: an httpx transport to use instead of the network (tests).
        """
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        if breaker_threshold < 1:
            raise ValueError("breaker_threshold must be at least 1")
        # purgatory reads a ttl of 0 as "use the default" (30 s): refuse it rather than surprise.
        if breaker_ttl <= 0:
            raise ValueError("breaker_ttl must be positive")
        if retry_wait < 0 or retry_max_wait < 0:
            raise ValueError("retry waits cannot be negative")

        self._attempts = attempts
        self._retry_wait = retry_wait
        self._retry_max_wait = retry_max_wait
        client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout),
            headers={"Accept": "application/json"},
            follow_redirects=False,
            transport=transport,
        )
        super().__init__("coinbase", client, threshold=breaker_threshold, ttl_seconds=breaker_ttl)

    async def fetch(self, now: datetime) -> Snapshot:
        """USD against every supported currency, stamped ``now``; ``ProviderUnavailable``
        when Coinbase cannot give a complete, well-formed answer."""
        return Snapshot(await self.guarded(self._with_retries), now, self.name)

    # -------------------------------------------------------------------- plumbing

    async def _with_retries(self) -> dict[Pair, Decimal]:
        return await self.retried(
            self._once,
            attempts=self._attempts,
            retry_if=lambda exc: isinstance(exc, _Transient),
            wait=self._retry_wait,
            max_wait=self._retry_max_wait,
        )

    async def _once(self) -> dict[Pair, Decimal]:
        """One HTTP attempt, with the outcome mapped onto the failure policy."""
        try:
            response = await self._client.get(COINBASE_PATH, params={"currency": ANCHOR.value})
        except httpx.TimeoutException as exc:
            raise _Transient(f"coinbase: timed out ({type(exc).__name__})") from exc
        except httpx.RequestError as exc:
            raise _Transient(f"coinbase: cannot reach the API ({type(exc).__name__})") from exc

        status = response.status_code
        if status == 429 or status >= 500:
            raise _Transient(f"coinbase: HTTP {status}")
        if not 200 <= status < 300:
            raise ProviderUnavailable(f"coinbase: unexpected HTTP {status}")
        return _parse(response.content)


# A plain decimal, optionally with an exponent: no sign, spaces, underscores, NaN or Infinity,
# all of which Decimal() would otherwise accept.
_DECIMAL_TEXT: Final = re.compile(r"[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]{1,2})?")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _parse(content: bytes) -> dict[Pair, Decimal]:
    """Coinbase's body as direct pairs ``USD/X``; ``ProviderUnavailable`` if it is unusable."""
    try:
        # parse_float=Decimal: a JSON number never becomes a float, even on its way to refusal.
        payload = json.loads(content, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise ProviderUnavailable("coinbase: the answer is not JSON") from None
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise ProviderUnavailable("coinbase: the answer has no 'data' object")
    if data.get("currency") != ANCHOR.value:
        raise ProviderUnavailable(
            f"coinbase: rates are against {data.get('currency')!r}, not {ANCHOR.value!r}"
        )
    rates = data.get("rates")
    if not isinstance(rates, dict):
        raise ProviderUnavailable("coinbase: the answer has no 'rates' object")
    mids: dict[Pair, Decimal] = {}
    for code in CurrencyCode:
        if code is ANCHOR:
            continue
        if code.value not in rates:
            raise ProviderUnavailable(f"coinbase: no rate for {code.value}")
        mids[Pair(ANCHOR, code)] = round_rate(_rate(code, rates[code.value]))
    return mids


def _rate(code: CurrencyCode, raw: object) -> Decimal:
    if not isinstance(raw, str):
        raise ProviderUnavailable(
            f"coinbase: the rate for {code.value} is a JSON {type(raw).__name__}, not a string"
        )
    if not _DECIMAL_TEXT.fullmatch(raw):
        raise ProviderUnavailable(
            f"coinbase: the rate for {code.value} is not a number: {raw[:40]!r}"
        )
    try:
        value = Decimal(raw)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise ProviderUnavailable(f"coinbase: the rate for {code.value} is unreadable") from None
    if value <= 0:
        raise ProviderUnavailable(f"coinbase: the rate for {code.value} is not positive: {raw!r}")
    return value


if TYPE_CHECKING:

    def _conforms(sandbox: SandboxRateFeed, coinbase: CoinbaseRateFeed) -> tuple[RateFeed, ...]:
        return sandbox, coinbase
