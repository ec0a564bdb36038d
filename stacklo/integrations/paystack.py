"""Paystack: deposits (hosted checkout), payouts (bank transfers), verification and webhooks.

Failure policy, which callers rely on:

* ``ProviderRejected(message)``: Paystack answered and said no (4xx, or ``"status": false``).
  Nothing happened on Paystack's side; the caller may fail the operation. It does not count
  against the circuit breaker, because a provider that answers is a provider that is up.
* ``ProviderUnavailable``: a connection error, a timeout, a 5xx or 429, an unusable answer, or
  the circuit is open. ``payout`` raises its subclass ``ProviderOutcomeUnknown`` when the
  transfer request may have reached Paystack (timeout, dropped connection, 5xx): the caller must
  keep the withdrawal pending and settle it from the webhook or ``payout_status``, never assume
  it failed. Any other ``ProviderUnavailable`` from ``payout`` means no transfer was asked for.

Retries (tenacity) happen only where resending cannot do harm: GETs, and requests that provably
never left this process (connect error, connect timeout, no free pooled connection). The
circuit breaker (purgatory) wraps each logical call, retries included, so one failed call is
one failure, and while it is open calls fail at once without touching the network.

Money goes out in minor units as an ``int`` computed exactly from the ``Decimal`` amount; an
amount with more decimals than its currency is a programming error (``ValueError``), never
rounded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, TypeGuard
from urllib.parse import quote

import httpx
import structlog

from stacklo.domain.money import Money, to_minor_units
from stacklo.domain.ports import (
    BankAccount,
    DepositVerification,
    PayoutStatus,
    ProviderEvent,
    ProviderEventKind,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderUnavailable,
)
from stacklo.integrations.breaker import BreakerClient, CircuitOpen

if TYPE_CHECKING:
    from stacklo.domain.ports import DepositLookup, PaymentProvider, PayoutLookup

__all__ = [
    "DEFAULT_BASE_URL",
    "SIGNATURE_HEADER",
    "DepositVerification",
    "MalformedEvent",
    "PaystackProvider",
    "parse_event",
    "sign",
    "to_minor_units",
    "verify_signature",
]

DEFAULT_BASE_URL: Final = "https://api.paystack.co"
#: The header Paystack puts the webhook signature in.
SIGNATURE_HEADER: Final = "x-paystack-signature"

log = structlog.get_logger("stacklo.integrations.paystack")

Method = Literal["GET", "POST"]

# The webhook events the platform acts on, in the domain's words; Paystack sends many more
# (subscriptions, disputes...), which are ignored.
EVENT_KINDS: Final = {
    "charge.success": ProviderEventKind.DEPOSIT_SUCCEEDED,
    "charge.failed": ProviderEventKind.DEPOSIT_FAILED,
    "transfer.success": ProviderEventKind.PAYOUT_SUCCEEDED,
    "transfer.failed": ProviderEventKind.PAYOUT_FAILED,
    "transfer.reversed": ProviderEventKind.PAYOUT_REVERSED,
}

# A transfer's status (GET /transfer/verify) in the domain's words. Anything else ("pending",
# "otp", "processing", "queued", "received"...) is not final yet.
PAYOUT_STATUSES: Final = {
    "success": PayoutStatus.SUCCEEDED,
    "failed": PayoutStatus.FAILED,
    "reversed": PayoutStatus.REVERSED,
}


# ------------------------------------------------------------------------------ money


def _positive_minor(amount: Money) -> int:
    minor = to_minor_units(amount)
    if minor <= 0:
        raise ValueError(f"amount must be positive, got {amount.amount}")
    return minor


# ------------------------------------------------------------------------------ results


class _NotFound(ProviderRejected):
    """Paystack answered 404: it has no such object."""


class _CallFailed(ProviderUnavailable):
    """A failed attempt, remembering whether the request may have reached Paystack.

    That decides whether a POST may be sent again: only if it certainly was not sent.
    """

    def __init__(self, message: str, *, may_have_reached_server: bool) -> None:
        super().__init__(message)
        self.may_have_reached_server = may_have_reached_server


# ------------------------------------------------------------------------------ adapter


class PaystackProvider(BreakerClient):
    """``PaymentProvider`` over Paystack's HTTP API, with timeouts, safe retries and a breaker.

    One instance per process, shared by all requests: it owns the HTTP connection pool and the
    breaker state (in memory, so each process trips its own breaker). Close it with
    ``aclose()`` or use it as an async context manager.
    """

    name = "paystack"

    def __init__(
        self,
        secret_key: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        callback_url: str | None = None,
        connect_timeout: float = 3.0,
        read_timeout: float = 10.0,
        max_attempts: int = 3,
        retry_wait: float = 0.2,
        retry_max_wait: float = 2.0,
        failure_threshold: int = 5,
        open_seconds: float = 30.0,
    ) -> None:
        """
        Args:
            secret_key: Paystack secret key (``sk_live_...`` / ``sk_test_...``); also the
                webhook signing key. Sent only in the Authorization header, never logged.
            base_url: API root; tests point it at a local fake.
            callback_url: where Paystack's checkout sends the payer back; Paystack uses the
                dashboard setting when omitted.
            connect_timeout / read_timeout: seconds; the write timeout equals the read one and
                waiting for a pooled connection uses the connect one.
            max_attempts: attempts per call where retrying is safe (1 disables retries).
            retry_wait / retry_max_wait: exponential backoff (``retry_wait * 2**n`` plus up to
                ``retry_wait`` of jitter, capped at ``retry_max_wait``); 0 in tests.
            failure_threshold: consecutive failed calls that open the circuit.
            open_seconds: how long the circuit stays open; then calls go through again
                (half-open) and the first outcome closes or reopens it.

        ``unknown_outcome_grace`` (three times the longest a call may take) is how old a payout
        whose answer was lost must be before Paystack not knowing its reference is taken to
        mean the transfer was never created.
        """
        if not secret_key:
            raise ValueError("a Paystack secret key is required")
        if connect_timeout <= 0 or read_timeout <= 0:
            raise ValueError("timeouts must be positive")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if retry_wait < 0 or retry_max_wait < 0:
            raise ValueError("retry waits cannot be negative")
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        # purgatory reads a ttl of 0 as "use the default" (30 s), so 0 is refused rather than
        # silently meaning something else.
        if open_seconds <= 0:
            raise ValueError("open_seconds must be positive")

        self._callback_url = callback_url
        self.unknown_outcome_grace = timedelta(seconds=3 * (connect_timeout + read_timeout))
        self._max_attempts = max_attempts
        self._retry_wait = retry_wait
        self._retry_max_wait = retry_max_wait
        client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(
                connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
            ),
            headers={"Authorization": f"Bearer {secret_key}", "Accept": "application/json"},
            follow_redirects=False,
        )
        # ProviderRejected is "excluded": purgatory then counts it as a success, which is right
        # (the provider is up) and also resets the run of consecutive failures.
        super().__init__(
            "paystack",
            client,
            threshold=failure_threshold,
            ttl_seconds=open_seconds,
            exclude=[ProviderRejected],
        )

    # -------------------------------------------------------------------- operations

    async def initialize_deposit(self, reference: str, amount: Money, email: str) -> str:
        """Register a payment under our ``reference``; return the hosted checkout URL.

        A ``ProviderUnavailable`` here may hide a registered transaction; that is harmless (an
        unpaid Paystack transaction is abandoned), but the same reference cannot be registered
        twice, so a retry by the caller needs a new reference.
        """
        body: dict[str, Any] = {
            "email": email,
            "amount": _positive_minor(amount),
            "currency": amount.currency.value,
            "reference": reference,
        }
        if self._callback_url:
            body["callback_url"] = self._callback_url
        data = await self._call("POST", "/transaction/initialize", body)
        return _str_field(data, "authorization_url")

    async def payout(self, reference: str, amount: Money, account: BankAccount, reason: str) -> str:
        """Send ``amount`` to a Nigerian bank account (NUBAN); return Paystack's transfer code.

        Two calls: create (or fetch) the transfer recipient, then the transfer, keyed by our
        ``reference``. If the first fails no money moved; if the second fails with
        ``ProviderUnavailable`` the transfer may exist, and the transfer webhook or
        reconciliation by ``reference`` settles it.
        """
        minor = _positive_minor(amount)
        currency = amount.currency.value
        recipient = await self._call(
            "POST",
            "/transferrecipient",
            {
                "type": "nuban",
                "name": account.account_name,
                "account_number": account.account_number,
                "bank_code": account.bank_code,
                "currency": currency,
            },
        )
        recipient_code = _str_field(recipient, "recipient_code")
        try:
            transfer = await self._call(
                "POST",
                "/transfer",
                {
                    "source": "balance",
                    "amount": minor,
                    "recipient": recipient_code,
                    "reference": reference,
                    "reason": reason,
                    "currency": currency,
                },
            )
            if transfer.get("status") == "otp":
                # The account has transfer OTP switched on: nothing moves until someone
                # finalises it by hand, so no webhook will come. Payouts from an API need OTP
                # disabled.
                log.warning("paystack.transfer_needs_otp", reference=reference)
            return _str_field(transfer, "transfer_code")
        except CircuitOpen:
            raise  # refused before the network: certainly not sent
        except _CallFailed as exc:
            if not exc.may_have_reached_server:
                raise
            log.warning("paystack.transfer_outcome_unknown", reference=reference, error=str(exc))
            raise ProviderOutcomeUnknown(str(exc)) from exc
        except ProviderUnavailable as exc:
            # Paystack said yes but without a usable transfer code: the transfer exists.
            log.warning("paystack.transfer_outcome_unknown", reference=reference, error=str(exc))
            raise ProviderOutcomeUnknown(str(exc)) from exc

    async def payout_status(self, reference: str) -> PayoutStatus:
        """What became of the transfer with our ``reference`` (a GET, retried when safe).

        ``NOT_FOUND`` when Paystack has no transfer by that reference; ``PENDING`` while it is
        not final.
        """
        if not reference:
            raise ValueError("reference is required")
        try:
            data = await self._call("GET", f"/transfer/verify/{quote(reference, safe='')}")
        except _NotFound:
            return PayoutStatus.NOT_FOUND
        return PAYOUT_STATUSES.get(_str_field(data, "status"), PayoutStatus.PENDING)

    async def verify_deposit(self, reference: str) -> DepositVerification:
        """Ask Paystack what became of a deposit (a GET, so it is retried when that is safe)."""
        if not reference:
            raise ValueError("reference is required")
        data = await self._call("GET", f"/transaction/verify/{quote(reference, safe='')}")
        return DepositVerification(
            reference=_str_field(data, "reference"),
            status=_str_field(data, "status"),
            amount_minor=_int_field(data, "amount"),
            currency=_str_field(data, "currency"),
            provider_id=str(data.get("id", "")),
        )

    # -------------------------------------------------------------------- plumbing

    async def _call(
        self, method: Method, path: str, body: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """One logical call through the breaker (retries inside it); Paystack's ``data``."""
        return await self.guarded(lambda: self._with_retries(method, path, body))

    async def _with_retries(
        self, method: Method, path: str, body: dict[str, Any] | None
    ) -> dict[str, Any]:
        # Only GETs, and requests that never left this process, are sent again. Paystack does
        # refuse a second transfer or transaction with the same reference, but it refuses it
        # with a 4xx ("duplicate reference") rather than the first result, so blindly resending
        # a POST whose answer was lost would turn a success into a ProviderRejected, and the
        # caller would fail (and refund) a payout that actually went out. Reconciliation by
        # reference settles those instead.
        idempotent = method == "GET"

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, _CallFailed) and (idempotent or not exc.may_have_reached_server)

        return await self.retried(
            lambda: self._send(method, path, body),
            attempts=self._max_attempts,
            retry_if=retryable,
            wait=self._retry_wait,
            max_wait=self._retry_max_wait,
            method=method,
            path=path,
        )

    async def _send(self, method: Method, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """One HTTP attempt, with the outcome mapped onto the failure policy."""
        what = f"{method} {path}"
        try:
            response = await self._client.request(method, path, json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            # No connection was made (or none was free), so no byte of the request was sent.
            raise _CallFailed(
                f"paystack: cannot connect ({type(exc).__name__}) for {what}",
                may_have_reached_server=False,
            ) from exc
        except httpx.TimeoutException as exc:
            raise _CallFailed(
                f"paystack: timed out ({type(exc).__name__}) on {what}",
                may_have_reached_server=True,
            ) from exc
        except httpx.RequestError as exc:
            raise _CallFailed(
                f"paystack: {type(exc).__name__} on {what}", may_have_reached_server=True
            ) from exc

        status = response.status_code
        payload = _json_object(response.content)
        if status == 429 or status >= 500:
            # 429 is a 4xx but means "not now", not "no": treated as unavailability.
            raise _CallFailed(f"paystack: HTTP {status} on {what}", may_have_reached_server=True)
        if status == 404 and payload is not None and payload.get("status") is False:
            raise _NotFound(_message(payload, "not found"))
        if 400 <= status < 500:
            raise ProviderRejected(_message(payload, f"HTTP {status}"))
        if not 200 <= status < 300 or payload is None:
            raise _CallFailed(
                f"paystack: unusable answer (HTTP {status}) on {what}",
                may_have_reached_server=True,
            )
        if payload.get("status") is not True:
            raise ProviderRejected(_message(payload, "request declined"))
        data = payload.get("data")
        if not isinstance(data, dict):
            raise _CallFailed(
                f"paystack: answer without data on {what}", may_have_reached_server=True
            )
        return data


# ------------------------------------------------------------------------------ webhooks


def sign(secret_key: str, raw_body: bytes) -> str:
    """Paystack's webhook signature: hex HMAC-SHA512 of the exact raw body, keyed by the secret."""
    return hmac.new(secret_key.encode(), raw_body, hashlib.sha512).hexdigest()


def verify_signature(secret_key: str, raw_body: bytes, signature: str | None) -> bool:
    """Whether ``signature`` (the ``x-paystack-signature`` header) signs ``raw_body``.

    Must be given the bytes as received: re-serialised JSON would not match. Compared in
    constant time so the check leaks nothing about the expected value. An empty key never
    verifies, so a missing configuration cannot make forged webhooks acceptable.
    """
    if not secret_key or not signature:
        return False
    expected = sign(secret_key, raw_body).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8", "replace"))


class MalformedEvent(ValueError):
    """A signed event of a kind we act on, whose fields we cannot use (the reason says why)."""


# Paystack's reference alphabet ("only -, ., = and alphanumeric characters"), bounded by what
# the ledger stores; the currency is an ISO code; amounts fit NUMERIC(38, 18) in minor units.
_REFERENCE = re.compile(r"[A-Za-z0-9.=_-]{1,64}")
_CURRENCY = re.compile(r"[A-Za-z]{3,5}")
_MAX_MINOR = 10**30


def parse_event(raw_body: bytes) -> ProviderEvent | None:
    """A verified webhook body as a ``ProviderEvent``; ``None`` for a body that is not an event
    we act on (another kind, not JSON, not an object). Raises ``MalformedEvent`` for an event
    of our kinds with unusable fields, which the endpoint answers 400 without touching the
    ledger.

    Call it only after ``verify_signature``. ``provider_id`` is the transfer code for transfer
    events (what ``payout`` returned) and Paystack's transaction id for charges.
    """
    try:
        payload = json.loads(raw_body, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(payload, dict):
        return None
    kind = payload.get("event")
    if not isinstance(kind, str) or kind not in EVENT_KINDS:
        return None
    data = payload.get("data")
    if not isinstance(data, dict):
        raise MalformedEvent("data is not an object")
    reference = data.get("reference")
    amount = data.get("amount")
    currency = data.get("currency")
    if not isinstance(reference, str) or not _REFERENCE.fullmatch(reference):
        raise MalformedEvent("reference is not a Paystack reference")
    if not _is_int(amount) or not 0 <= amount < _MAX_MINOR:
        raise MalformedEvent("amount is not a whole number of minor units")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise MalformedEvent("currency is not a currency code")
    provider_id = _event_provider_id(kind, data)
    if provider_id is None:
        raise MalformedEvent("the event carries no id")
    return ProviderEvent(
        name=kind,
        kind=EVENT_KINDS[kind],
        reference=reference,
        amount_minor=amount,
        currency=currency.upper(),
        provider_id=provider_id,
        raw=payload,
    )


# ------------------------------------------------------------------------------ helpers


def _event_provider_id(kind: str, data: dict[str, Any]) -> str | None:
    transfer_code = data.get("transfer_code")
    is_code = isinstance(transfer_code, str) and _REFERENCE.fullmatch(transfer_code)
    if kind.startswith("transfer.") and is_code:
        return str(transfer_code)
    event_id = data.get("id")
    if _is_int(event_id) and 0 <= event_id < 10**18:
        return str(event_id)
    if isinstance(event_id, str) and _REFERENCE.fullmatch(event_id):
        return event_id
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"not JSON: {name}")


def _json_object(content: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(content, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _message(payload: dict[str, Any] | None, default: str) -> str:
    message = payload.get("message") if payload else None
    return message if isinstance(message, str) and message else default


def _field(data: dict[str, Any], key: str, check: Callable[[object], bool]) -> Any:
    value = data.get(key)
    if not check(value):
        raise ProviderUnavailable(f"paystack: answer has no usable {key!r}")
    return value


def _str_field(data: dict[str, Any], key: str) -> str:
    value: str = _field(data, key, lambda v: isinstance(v, str) and bool(v))
    return value


def _int_field(data: dict[str, Any], key: str) -> int:
    value: int = _field(data, key, _is_int)
    return value


if TYPE_CHECKING:

    def _conforms(provider: PaystackProvider) -> PaymentProvider:
        return provider

    def _looks_up(provider: PaystackProvider) -> PayoutLookup:
        return provider

    def _verifies(provider: PaystackProvider) -> DepositLookup:
        return provider
