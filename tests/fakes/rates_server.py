"""A fake Coinbase exchange-rates API on 127.0.0.1, so the real ``CoinbaseRateFeed`` (HTTP,
retries, breaker) is tested.

It serves ``GET /v2/exchange-rates?currency=USD`` the way Coinbase does:
``{"data": {"currency": "USD", "rates": {"NGN": "1550.12", ...}}}`` with every rate a string,
and records every request. Only USD is served as the base; any other ``currency`` answers 400
like Coinbase answers an unknown one. Tests steer it with ``mode``, ``rates`` and
``fail_next(n)``::

    with FakeCoinbase() as fake:
        feed = CoinbaseRateFeed(fake.base_url, retry_wait=0)
        fake.mode = "error500"
        ...
        assert fake.count() == 3

Modes: ``ok``; ``error500``; ``error429``; ``slow`` (sleeps ``slow_seconds``, longer than the
client's timeout, before answering normally); ``malformed`` (a 200 whose body is cut-off JSON);
``float_rates`` (rates as JSON numbers); ``missing_currency`` (``missing`` is left out of the
rates); ``wrong_currency`` (``data.currency`` says EUR); ``not_found`` (404). ``fail_next(n)``
makes the next n requests answer 500 whatever the mode.

The server runs uvicorn in a daemon thread with its own event loop, so it works from sync and
async tests alike and never shares the tests' loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from dataclasses import dataclass
from typing import Any, Literal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.fakes.threaded import ThreadedServer

Mode = Literal[
    "ok",
    "error500",
    "error429",
    "slow",
    "malformed",
    "float_rates",
    "missing_currency",
    "wrong_currency",
    "not_found",
]

PATH = "/v2/exchange-rates"

# "1 USD = x CODE", as Coinbase writes them: strings, some with more digits than a rate keeps,
# plus currencies the platform does not support (which the adapter must ignore).
DEFAULT_RATES: dict[str, str] = {
    "NGN": "1550.123456789012345",
    "GBP": "0.787401574803",
    "EUR": "0.92",
    "BTC": "0.0000105",
    "ETH": "0.000294117647058823529",
    "USDT": "1.0000",
    "USD": "1.0",
    "JPY": "151.2",
    "GHS": "15.45",
}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]


class FakeCoinbase(ThreadedServer):
    """The fake server; ``start()``/``stop()`` or use it as a context manager."""

    label = "fake Coinbase"

    def __init__(self, *, slow_seconds: float = 2.0) -> None:
        super().__init__()
        self.slow_seconds = slow_seconds
        self.mode: Mode = "ok"
        self.rates: dict[str, str] = dict(DEFAULT_RATES)
        #: The currency left out in ``missing_currency`` mode.
        self.missing = "NGN"
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._fail_next = 0
        self.app = Starlette(routes=[Route("/{path:path}", self._dispatch, methods=["GET"])])

    # ------------------------------------------------------------------ controls

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def count(self, path: str | None = PATH) -> int:
        """Requests so far (to ``path``; all of them if ``None``)."""
        return sum(1 for r in self.requests if path is None or r.path == path)

    def fail_next(self, n: int) -> None:
        """The next ``n`` requests answer 500, whatever the mode."""
        with self._lock:
            self._fail_next = n

    def reset(self) -> None:
        """Back to a fresh server: mode ok, default rates, no failures queued, no requests."""
        with self._lock:
            self.mode = "ok"
            self.rates = dict(DEFAULT_RATES)
            self.missing = "NGN"
            self._fail_next = 0
            self._requests.clear()

    # ------------------------------------------------------------------ HTTP

    async def _dispatch(self, request: Request) -> Response:
        path = request.url.path
        with self._lock:
            self._requests.append(RecordedRequest("GET", path, dict(request.query_params)))
            failing = self._fail_next > 0
            if failing:
                self._fail_next -= 1
            mode = self.mode
            rates = dict(self.rates)
            missing = self.missing

        if mode == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped().wait(), self.slow_seconds)
        if failing or mode == "error500":
            return _errors("internal_server_error", "Internal server error", 500)
        if mode == "error429":
            return _errors("rate_limit_exceeded", "Too many requests", 429)
        if mode == "not_found" or path != PATH:
            return _errors("not_found", "Not found", 404)
        base = request.query_params.get("currency", "USD").upper()
        if base != "USD":
            return _errors("invalid_request", f"Invalid currency ({base})", 400)

        if mode == "malformed":
            cut = b'{"data": {"currency": "USD", "rates": {"NGN": "15'
            return Response(cut, 200, media_type="application/json")
        body_rates: dict[str, Any] = dict(rates)
        if mode == "missing_currency":
            body_rates.pop(missing, None)
        if mode == "float_rates":
            # Raw JSON numbers, written by hand so no float is made here either.
            items = ", ".join(f'"{code}": {rate}' for code, rate in rates.items())
            text = f'{{"data": {{"currency": "USD", "rates": {{{items}}}}}}}'
            return Response(text.encode(), 200, media_type="application/json")
        currency = "EUR" if mode == "wrong_currency" else "USD"
        payload = {"data": {"currency": currency, "rates": body_rates}}
        return Response(json.dumps(payload).encode(), 200, media_type="application/json")


def _errors(error_id: str, message: str, status: int) -> JSONResponse:
    return JSONResponse({"errors": [{"id": error_id, "message": message}]}, status_code=status)
