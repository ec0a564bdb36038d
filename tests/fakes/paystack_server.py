"""A fake Paystack API on 127.0.0.1, so the real adapter (HTTP, retries, breaker) is tested.

It serves the endpoints ``PaystackProvider`` uses with Paystack-shaped answers
(``{"status": true, "message": ..., "data": {...}}``), checks the Bearer secret, validates
required fields the way Paystack does (400 with ``"status": false``), and records every
request. Tests steer it with ``mode`` and ``fail_next(n)``::

    with FakePaystack("sk_test_x") as fake:
        provider = PaystackProvider("sk_test_x", base_url=fake.base_url)
        fake.mode = "error500"
        ...
        assert fake.count("POST", "/transaction/initialize") == 1

Modes: ``ok``; ``error500`` (every API call answers 500); ``slow`` (sleeps ``slow_seconds``,
longer than the client's timeout, before answering); ``reject`` (400, ``status: false``);
``status_false`` (200 with ``status: false``, which Paystack also does). ``fail_next(n)`` makes
the next n API calls (optionally only those to one path) answer 500 whatever the mode. The checkout page (``/pay/...``) is not
affected by modes and needs no secret, like the real one.

The server runs uvicorn in a daemon thread with its own event loop, so it works from sync and
async tests alike and never shares the tests' loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import re
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self, TypeGuard

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

Mode = Literal["ok", "error500", "slow", "reject", "status_false"]
Handler = Callable[[dict[str, Any], str], Awaitable[Response]]

# Currencies Paystack settles; anything else is refused like the real API does.
PAYSTACK_CURRENCIES = frozenset({"NGN", "USD", "GHS", "ZAR", "KES"})


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    json: Any
    authorization: str | None


@dataclass
class _Transaction:
    reference: str
    amount: int
    currency: str
    email: str
    access_code: str
    id: int
    status: str = "abandoned"


@dataclass
class _State:
    transactions: dict[str, _Transaction] = field(default_factory=dict)
    recipients: dict[str, dict[str, Any]] = field(default_factory=dict)
    transfers: dict[str, dict[str, Any]] = field(default_factory=dict)
    next_id: int = 1000


def _fail(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"status": False, "message": message}, status_code=status)


def _ok(message: str, data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"status": True, "message": message, "data": data})


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


class FakePaystack:
    """The fake server; ``start()``/``stop()`` or use it as a context manager."""

    def __init__(self, secret_key: str = "sk_test_fake", *, slow_seconds: float = 2.0) -> None:
        self.secret_key = secret_key
        self.slow_seconds = slow_seconds
        self.mode: Mode = "ok"
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._fail_next = 0
        self._fail_path: str | None = None
        self._state = _State()
        # Set (from the test thread) on stop, so "slow" handlers end and shutdown is quick.
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._routes: dict[tuple[str, str], Handler] = {
            ("POST", "/transaction/initialize"): self._initialize,
            ("POST", "/transferrecipient"): self._recipient,
            ("POST", "/transfer"): self._transfer,
        }
        self.app = Starlette(
            routes=[
                Route("/pay/{access_code}", self._checkout, methods=["GET"]),
                Route("/{path:path}", self._dispatch, methods=["GET", "POST"]),
            ]
        )

    # ------------------------------------------------------------------ controls

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError("the fake Paystack is not started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """API requests so far (checkout page visits excluded), oldest first."""
        with self._lock:
            return list(self._requests)

    def count(self, method: str | None = None, path: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method) and (path is None or r.path == path)
        )

    def fail_next(self, n: int, path: str | None = None) -> None:
        """The next ``n`` API requests (to ``path`` only, if given) answer 500, whatever the mode."""
        with self._lock:
            self._fail_next = n
            self._fail_path = path

    def mark_paid(self, reference: str, status: str = "success") -> None:
        """What the payer completing checkout would do: verify then reports ``status``."""
        with self._lock:
            self._state.transactions[reference].status = status

    def reset(self) -> None:
        """Back to a fresh server: mode ok, no failures queued, no requests, no data."""
        with self._lock:
            self.mode = "ok"
            self._fail_next = 0
            self._fail_path = None
            self._requests.clear()
            self._state = _State()

    def start(self) -> None:
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when
        # the listening socket says it is TCP; with proto 0 each response waits ~40 ms for the
        # client's delayed ACK (Nagle).
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
            target=server.run, kwargs={"sockets": [sock]}, name="fake-paystack", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake Paystack did not start")
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
        raw = await request.body()
        body: Any = None
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None  # recorded as no JSON, answered 400 below
        method, path = request.method, request.url.path
        with self._lock:
            self._requests.append(
                RecordedRequest(method, path, body, request.headers.get("authorization"))
            )
            failing = self._fail_next > 0 and self._fail_path in (None, path)
            if failing:
                self._fail_next -= 1
            mode = self.mode

        if mode == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped().wait(), self.slow_seconds)
        if failing or mode == "error500":
            return JSONResponse({"status": False, "message": "Internal error"}, status_code=500)
        if request.headers.get("authorization") != f"Bearer {self.secret_key}":
            return _fail("Invalid key", 401)
        if mode == "reject":
            return _fail("Declined by the fake Paystack")
        if mode == "status_false":
            return JSONResponse({"status": False, "message": "Declined with a 200"})

        if method == "GET":
            verify = re.fullmatch(r"/transaction/verify/(.+)", path)
            if verify:
                return self._verify(verify.group(1))
            return _fail("Not found", 404)
        handler = self._routes.get((method, path))
        if handler is None:
            return _fail("Not found", 404)
        if not isinstance(body, dict):
            return _fail("Invalid JSON body")
        with self._lock:
            self._state.next_id += 1
            serial = self._state.next_id
        return await handler(body, f"{serial}")

    async def _checkout(self, request: Request) -> Response:
        code = request.path_params["access_code"]
        page = f"<!doctype html><title>Fake checkout</title><p>Pay {html.escape(code)}</p>"
        return HTMLResponse(page)

    async def _initialize(self, body: dict[str, Any], serial: str) -> Response:
        email, amount = body.get("email"), body.get("amount")
        currency = body.get("currency", "NGN")
        reference = body.get("reference") or f"T{serial}"
        if not _text(email) or "@" not in email:
            return _fail("Invalid Email Address Passed")
        if not _positive_int(amount):
            return _fail("Invalid Amount Sent")
        if currency not in PAYSTACK_CURRENCIES:
            return _fail("Currency not supported by merchant")
        if not _text(reference):
            return _fail("Invalid transaction reference")
        with self._lock:
            if reference in self._state.transactions:
                return _fail("Duplicate Transaction Reference")
            access_code = f"ac_{serial}"
            self._state.transactions[reference] = _Transaction(
                reference, amount, currency, email, access_code, int(serial)
            )
        return _ok(
            "Authorization URL created",
            {
                "authorization_url": f"{self.base_url}/pay/{access_code}",
                "access_code": access_code,
                "reference": reference,
            },
        )

    def _verify(self, reference: str) -> Response:
        with self._lock:
            tx = self._state.transactions.get(reference)
        if tx is None:
            return _fail("Transaction reference not found")
        return _ok(
            "Verification successful",
            {
                "id": tx.id,
                "status": tx.status,
                "reference": tx.reference,
                "amount": tx.amount,
                "currency": tx.currency,
                "customer": {"email": tx.email},
            },
        )

    async def _recipient(self, body: dict[str, Any], serial: str) -> Response:
        account_number, bank_code = body.get("account_number"), body.get("bank_code")
        if body.get("type") != "nuban":
            return _fail("Invalid type. Only nuban, mobile_money, basa and authorization allowed")
        if not _text(body.get("name")):
            return _fail("Name is required")
        if not isinstance(account_number, str) or not re.fullmatch(r"\d{10}", account_number):
            return _fail("Account number is invalid")
        if not _text(bank_code):
            return _fail("Bank code is required")
        if body.get("currency", "NGN") not in PAYSTACK_CURRENCIES:
            return _fail("Currency not supported")
        # Paystack hands back the same recipient for the same account details.
        digest = hashlib.sha256(f"{bank_code}:{account_number}".encode()).hexdigest()[:12]
        code = f"RCP_{digest}"
        data = {
            "recipient_code": code,
            "type": "nuban",
            "name": body["name"],
            "currency": body.get("currency", "NGN"),
            "details": {"account_number": account_number, "bank_code": bank_code},
        }
        with self._lock:
            self._state.recipients[code] = data
        return _ok("Transfer recipient created successfully", data)

    async def _transfer(self, body: dict[str, Any], serial: str) -> Response:
        amount, recipient, reference = (
            body.get("amount"),
            body.get("recipient"),
            body.get("reference"),
        )
        if body.get("source") != "balance":
            return _fail("Invalid source")
        if not _positive_int(amount):
            return _fail("Invalid amount")
        if reference is not None and not _text(reference):
            return _fail("Invalid reference")
        with self._lock:
            if recipient not in self._state.recipients:
                return _fail("Recipient specified is invalid")
            reference = reference or f"TR{serial}"
            if reference in self._state.transfers:
                return _fail("Transfer reference already exists")
            data = {
                "transfer_code": f"TRF_{serial}",
                "reference": reference,
                "amount": amount,
                "currency": body.get("currency", "NGN"),
                "recipient": recipient,
                "reason": body.get("reason"),
                "status": "pending",
                "id": int(serial),
            }
            self._state.transfers[reference] = data
        return _ok("Transfer has been queued", data)
