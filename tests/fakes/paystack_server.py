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

Modes: ``ok``; ``error500`` (every API call answers 500 and does nothing); ``slow`` (sleeps
``slow_seconds`` before acting and answering: longer or shorter than the client's timeout, as
the test sets it); ``timeout`` (acts at once, then holds the answer ``hang_seconds``: the
request took effect and its answer is lost); ``drop`` (acts, then cuts the connection in the
middle of the answer); ``reject`` (400, ``status: false``); ``status_false`` (200 with
``status: false``, which Paystack also does). ``go_down()`` / ``come_back()`` stop listening
(connection refused) and listen again on the same port. ``fail_next(n)`` makes the next n API
calls (optionally only those to one path) answer 500 whatever the mode. The checkout page
(``/pay/...``) is not affected by modes and needs no secret, like the real one.

Like Paystack, the fake knows its transfers (``GET /transfer/verify/{reference}``) and can
sign and send webhooks: ``event(kind, reference)`` builds a signed body from what it recorded,
``deliver(url, bodies, ...)`` posts them, shuffled and repeated, to Stacklo's
``/webhooks/paystack``.

The server runs uvicorn in a daemon thread with its own event loop, so it works from sync and
async tests alike and never shares the tests' loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import html
import json
import random
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from stacklo.integrations.paystack import SIGNATURE_HEADER, sign
from tests.fakes.threaded import ThreadedServer

Mode = Literal["ok", "error500", "slow", "timeout", "drop", "reject", "status_false"]
#: Webhook events the fake can send, as Paystack names them.
EventName = Literal[
    "charge.success", "charge.failed", "transfer.success", "transfer.failed", "transfer.reversed"
]
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


@dataclass(frozen=True)
class Delivery:
    """One webhook POST and Stacklo's answer."""

    event: str
    reference: str
    status_code: int
    outcome: str


class _CutAnswer(Response):
    """Promises a body it never finishes: the client sees the connection drop mid-answer."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"status": tr', "more_body": False})


def _fail(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"status": False, "message": message}, status_code=status)


def _ok(message: str, data: dict[str, Any]) -> JSONResponse:
    return JSONResponse({"status": True, "message": message, "data": data})


def _positive_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _text(value: object) -> TypeGuard[str]:
    return isinstance(value, str) and bool(value.strip())


class FakePaystack(ThreadedServer):
    """The fake server; ``start()``/``stop()`` or use it as a context manager."""

    label = "fake Paystack"

    def __init__(
        self,
        secret_key: str = "sk_test_fake",
        *,
        slow_seconds: float = 2.0,
        hang_seconds: float = 5.0,
    ) -> None:
        super().__init__()
        self.secret_key = secret_key
        self.slow_seconds = slow_seconds
        self.hang_seconds = hang_seconds
        self.mode: Mode = "ok"
        #: When set, ``mode`` applies to calls to this path only; the rest are answered ``ok``.
        self.mode_path: str | None = None
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._fail_next = 0
        self._fail_path: str | None = None
        self._state = _State()
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

    def go_down(self) -> None:
        """Stop listening: every call is refused until ``come_back()``."""
        self.stop()

    def come_back(self) -> None:
        self.start(same_port=True)

    def transfers(self) -> dict[str, dict[str, Any]]:
        """Transfers Paystack has, by our reference (copies)."""
        with self._lock:
            return {k: dict(v) for k, v in self._state.transfers.items()}

    def transactions(self) -> dict[str, str]:
        """Registered deposits (reference -> status: abandoned, success, failed)."""
        with self._lock:
            return {k: v.status for k, v in self._state.transactions.items()}

    def settle_transfer(self, reference: str, status: str) -> None:
        """What the bank did with a transfer: ``success``, ``failed`` or ``reversed``."""
        with self._lock:
            self._state.transfers[reference]["status"] = status

    def event(self, name: str, reference: str) -> bytes:
        """The body Paystack would send for ``name`` about what it recorded under ``reference``."""
        with self._lock:
            if name.startswith("charge."):
                tx = self._state.transactions[reference]
                data: dict[str, Any] = {
                    "id": tx.id,
                    "reference": tx.reference,
                    "amount": tx.amount,
                    "currency": tx.currency,
                    "status": name.removeprefix("charge."),
                    "customer": {"email": tx.email},
                }
            else:
                transfer = self._state.transfers[reference]
                data = {
                    key: transfer[key]
                    for key in ("id", "transfer_code", "reference", "amount", "currency")
                }
                data["status"] = name.removeprefix("transfer.")
        return json.dumps({"event": name, "data": data}).encode()

    def deliver(
        self,
        server_url: str,
        bodies: Sequence[bytes],
        *,
        rng: random.Random,
        copies: tuple[int, int] = (2, 3),
        concurrency: int = 4,
    ) -> list[Delivery]:
        """Post each signed body ``copies`` times (inclusive range), all of them shuffled, a few
        at once, as Paystack's retries and parallel senders do; Stacklo's answers, in order
        sent."""
        batch = [body for body in bodies for _ in range(rng.randint(*copies))]
        rng.shuffle(batch)

        def post(http: httpx.Client, body: bytes) -> Delivery:
            sent = json.loads(body)
            answer = http.post(
                "/webhooks/paystack",
                content=body,
                headers={
                    "content-type": "application/json",
                    SIGNATURE_HEADER: sign(self.secret_key, body),
                },
            )
            outcome = answer.json().get("status", "") if answer.status_code == 200 else ""
            return Delivery(sent["event"], sent["data"]["reference"], answer.status_code, outcome)

        with (
            httpx.Client(base_url=server_url, timeout=30) as http,
            ThreadPoolExecutor(concurrency) as pool,
        ):
            return list(pool.map(lambda body: post(http, body), batch))

    def reset(self) -> None:
        """Back to a fresh server: mode ok, no failures queued, no requests, no data."""
        with self._lock:
            self.mode = "ok"
            self.mode_path = None
            self._fail_next = 0
            self._fail_path = None
            self._requests.clear()
            self._state = _State()

    # ------------------------------------------------------------------ HTTP

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
            mode = self.mode if self.mode_path in (None, path) else "ok"

        if mode == "slow":
            await self._pause(self.slow_seconds)
        if failing or mode == "error500":
            return JSONResponse({"status": False, "message": "Internal error"}, status_code=500)
        answer = await self._answer(method, path, body, request, mode)
        if mode == "timeout":
            await self._pause(self.hang_seconds)
        if mode == "drop":
            return _CutAnswer()
        return answer

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopped().wait(), seconds)

    async def _answer(
        self, method: str, path: str, body: Any, request: Request, mode: Mode
    ) -> Response:
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
            transfer = re.fullmatch(r"/transfer/verify/(.+)", path)
            if transfer:
                return self._verify_transfer(transfer.group(1))
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

    def _verify_transfer(self, reference: str) -> Response:
        with self._lock:
            transfer = self._state.transfers.get(reference)
            data = dict(transfer) if transfer else None
        if data is None:
            return _fail("Transfer not found", 404)
        return _ok("Transfer retrieved", data)

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
