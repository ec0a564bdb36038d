"""Business-rule failures. They become ``userErrors`` with a code and a field path."""

from __future__ import annotations

from enum import Enum


class ErrorCode(Enum):
    INVALID_INPUT = "INVALID_INPUT"
    NOT_FOUND = "NOT_FOUND"
    EMAIL_TAKEN = "EMAIL_TAKEN"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    WEAK_PASSWORD = "WEAK_PASSWORD"
    INVALID_TOKEN = "INVALID_TOKEN"
    KYC_REQUIRED = "KYC_REQUIRED"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    WALLET_FROZEN = "WALLET_FROZEN"
    WALLET_EXISTS = "WALLET_EXISTS"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
    QUOTE_REQUIRED = "QUOTE_REQUIRED"
    QUOTE_EXPIRED = "QUOTE_EXPIRED"
    QUOTE_ALREADY_USED = "QUOTE_ALREADY_USED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    PROVIDER_UNAVAILABLE = "PROVIDER_UNAVAILABLE"
    CREDIT_DECLINED = "CREDIT_DECLINED"
    CREDIT_LIMIT_EXCEEDED = "CREDIT_LIMIT_EXCEEDED"
    INVALID_STATE = "INVALID_STATE"


class DomainError(Exception):
    """A rule said no. ``field`` is the input path at fault, e.g. ``("input", "email")``."""

    def __init__(self, code: ErrorCode, message: str, field: tuple[str, ...] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def __repr__(self) -> str:
        return f"DomainError({self.code.value}, {self.message!r}, {self.field!r})"


class AccessError(Exception):
    """Authentication or authorisation failed: a GraphQL error, not a userError."""

    code = "FORBIDDEN"

    def __init__(self, message: str | None = None):
        super().__init__(message or self.default_message)

    default_message = "You are not allowed to do this."


class Unauthenticated(AccessError):
    code = "UNAUTHENTICATED"
    default_message = "Authentication required."


class Forbidden(AccessError):
    code = "FORBIDDEN"
    default_message = "You are not allowed to do this."


class Conflict(Exception):
    """A uniqueness rule held by the store was hit (e.g. ``what="email"``)."""

    def __init__(self, what: str):
        super().__init__(what)
        self.what = what


class RateLimited(AccessError):
    """Refused for now; ``retry_after`` (seconds) says when trying again can succeed."""

    code = "RATE_LIMITED"
    default_message = "Too many requests; slow down."

    def __init__(self, message: str | None = None, retry_after: int | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class CursorExpired(AccessError):
    """A resume cursor older than the retention window: resubscribe without ``after``."""

    code = "CURSOR_EXPIRED"
    default_message = (
        "This cursor is older than the event retention window; subscribe again without `after`."
    )


class InvalidCursor(AccessError):
    code = "INVALID_INPUT"
    default_message = "after is not a valid cursor."


class BroadcastUnavailable(AccessError):
    """Live events cannot flow for a moment (the broadcast connection, Redis, is being
    re-established): retry the subscription shortly, with the last cursor received."""

    code = "SERVICE_UNAVAILABLE"
    default_message = "Live events are unavailable for a moment; subscribe again shortly."
