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
import socket
import threading
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

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


class FakeCoinbase:
    """The fake server; ``start()``/``stop()`` or use it as a context manager."""

    def __init__(self, *, slow_seconds: float = 2.0) -> None:
        self.slow_seconds = slow_seconds
        self.mode: Mode = "ok"
        self.rates: dict[str, str] = dict(DEFAULT_RATES)
        #: The currency left out in ``missing_currency`` mode.
        self.missing = "NGN"
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._fail_next = 0
        # Set (from the test thread) on stop, so "slow" handlers end and shutdown is quick.
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self.app = Starlette(routes=[Route("/{path:path}", self._dispatch, methods=["GET"])])

    # ------------------------------------------------------------------ controls

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("the fake Coinbase is not started")
        return f"http://127.0.0.1:{self._port}"

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

    def start(self) -> None:
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP;
        # without it each answer waits ~40 ms for the client's delayed ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._stop_event = None
        self._loop = None
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake-coinbase", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Coinbase did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ HTTP

    def _stopped(self) -> asyncio.Event:
        """The stop event, created on the server's own loop (it runs in the server thread)."""
        if self._stop_event is None:
            self._loop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()
        return self._stop_event

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
