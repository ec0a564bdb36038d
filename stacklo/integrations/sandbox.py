"""A sandbox payment provider for the embedded default and tests.

It behaves like Paystack from the outside: ``initialize_deposit`` returns a payment page
(served by Stacklo itself), and completing that page with ``outcome=success`` or
``outcome=failure`` delivers a Paystack-shaped webhook, signed with the sandbox secret, to the
same handler that serves ``POST /webhooks/paystack``: one code path for both.

Payouts are accepted at once and settled on demand at ``/sandbox/paystack/transfers/{ref}``
with ``outcome=success|failure|reversed``.

The payment page URL carries the amount and currency, signed, so any worker process can
render and complete it without shared memory.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from stacklo.domain.money import CURRENCIES, Money, to_minor_units
from stacklo.domain.ports import BankAccount
from stacklo.integrations.paystack import sign

PREFIX = "/sandbox/paystack"
Deliver = Callable[[bytes, str, Request], Awaitable[Response]]
# reference -> (amount in minor units, currency) of a payout, or None if there is none.
Lookup = Callable[[str], Awaitable[tuple[int, str] | None]]
# Our own references (TXN-7Q2K9F4D); anything else names no payment here.
_REFERENCE = re.compile(r"[A-Z0-9-]{1,32}")


def _not_found(what: str) -> JSONResponse:
    return JSONResponse({"error": what}, status_code=404)


class SandboxProvider:
    name = "sandbox"

    def __init__(self, secret_key: str):
        self.secret_key = secret_key

    def _seal(self, reference: str, amount_minor: int, currency: str) -> str:
        message = f"{reference}|{amount_minor}|{currency}".encode()
        return hmac.new(self.secret_key.encode(), message, hashlib.sha256).hexdigest()[:32]

    async def initialize_deposit(self, reference: str, amount: Money, email: str) -> str:
        minor = to_minor_units(amount)
        query = urlencode(
            {
                "amount": minor,
                "currency": amount.currency.value,
                "sig": self._seal(reference, minor, amount.currency.value),
            }
        )
        # Path only: the API layer makes it absolute against the request's own origin.
        return f"{PREFIX}/checkout/{reference}?{query}"

    async def payout(self, reference: str, amount: Money, account: BankAccount, reason: str) -> str:
        return "TRF_sandbox_" + secrets.token_hex(6)

    def routes(self, deliver: Deliver, lookup: Lookup) -> list[Route]:
        """The sandbox's pages; ``deliver(raw_body, signature, request)`` is the webhook handler."""

        async def checkout(request: Request) -> Response:
            reference = request.path_params["reference"]
            try:
                minor = int(request.query_params["amount"])
                currency = request.query_params["currency"]
                valid = _REFERENCE.fullmatch(reference) is not None and hmac.compare_digest(
                    request.query_params["sig"].encode(),
                    self._seal(reference, minor, currency).encode(),
                )
            except (KeyError, ValueError):
                valid = False
            if not valid or currency not in {c.value for c in CURRENCIES}:
                return _not_found("unknown or tampered payment link")
            if request.method == "GET":
                return HTMLResponse(
                    _page(reference, minor, currency),
                    headers={"Content-Security-Policy": _PAGE_POLICY},
                )
            form = await request.form()
            outcome = str(form.get("outcome", ""))
            if outcome not in ("success", "failure"):
                return JSONResponse(
                    {"error": "outcome must be success or failure"}, status_code=400
                )
            # Tests may pay a different amount to exercise the mismatch path.
            try:
                paid = int(str(form.get("amount_minor") or minor))
            except ValueError:
                return JSONResponse({"error": "amount_minor must be an integer"}, status_code=400)
            event = {
                "event": "charge.success" if outcome == "success" else "charge.failed",
                "data": {
                    "id": secrets.randbelow(10**9),
                    "reference": reference,
                    "amount": paid,
                    "currency": str(form.get("currency") or currency)[:8],
                    "status": "success" if outcome == "success" else "failed",
                    "channel": "sandbox",
                },
            }
            return await self._send(event, deliver, request)

        async def transfer(request: Request) -> Response:
            reference = request.path_params["reference"]
            if not _REFERENCE.fullmatch(reference):
                return _not_found("no such payout")
            form = await request.form()
            outcome = str(form.get("outcome", ""))
            kinds = {
                "success": "transfer.success",
                "failure": "transfer.failed",
                "reversed": "transfer.reversed",
            }
            if outcome not in kinds:
                return JSONResponse(
                    {"error": "outcome must be success, failure or reversed"}, status_code=400
                )
            found = await lookup(reference)
            if found is None:
                return _not_found("no such payout")
            event = {
                "event": kinds[outcome],
                "data": {
                    "reference": reference,
                    "transfer_code": "TRF_sandbox_" + secrets.token_hex(6),
                    "id": secrets.randbelow(10**9),
                    "amount": found[0],
                    "currency": found[1],
                    "status": outcome,
                },
            }
            return await self._send(event, deliver, request)

        return [
            Route(PREFIX + "/checkout/{reference}", checkout, methods=["GET", "POST"]),
            Route(PREFIX + "/transfers/{reference}", transfer, methods=["POST"]),
        ]

    async def _send(
        self, event: Mapping[str, object], deliver: Deliver, request: Request
    ) -> Response:
        raw = json.dumps(event).encode()
        return await deliver(raw, sign(self.secret_key, raw), request)


_PAGE_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
)


def _page(reference: str, minor: int, currency: str) -> str:
    amount = Decimal(minor).scaleb(
        -CURRENCIES[next(c for c in CURRENCIES if c.value == currency)].decimals
    )
    ref = html.escape(reference)
    shown = html.escape(format(amount, "f")) + " " + html.escape(currency)
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Sandbox payment</title><link rel="icon" href="data:,"></head>
<body style="font-family:sans-serif;max-width:28rem;margin:3rem auto">
<h1>Sandbox payment</h1><p>Pay <strong>{shown}</strong>
for <code>{ref}</code>. No real money moves.</p>
<form method="post"><button name="outcome" value="success">Pay</button>
<button name="outcome" value="failure">Decline</button></form></body></html>"""
