"""Input rules for people-facing fields: sizes, control characters, formats."""

from __future__ import annotations

import re
import unicodedata

from email_validator import EmailNotValidError, validate_email

from stacklo.domain.errors import DomainError, ErrorCode

MAX_EMAIL = 254
MAX_NAME = 120
MIN_PASSWORD = 10
MAX_PASSWORD = 256  # argon2 accepts more, but an unbounded input is a cheap DoS
MAX_REASON = 500
_PHONE = re.compile(r"\+[1-9][0-9]{7,14}")


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") for ch in value)


def names_nothing(value: str, max_len: int) -> bool:
    """Whether a lookup or filter text cannot name anything stored: longer than anything we
    store there, or with control characters (which no stored value has, and PostgreSQL
    refuses a NUL outright), so it finds nothing without asking the database."""
    return len(value) > max_len or _has_control(value)


def clean_text(value: str, field: tuple[str, ...], *, max_len: int, required: bool = True) -> str:
    """Trim and reject empty, oversized or control-character text."""
    text = value.strip()
    if required and not text:
        raise DomainError(ErrorCode.INVALID_INPUT, f"{field[-1]} is required", field)
    if len(text) > max_len:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"{field[-1]} is longer than {max_len} characters", field
        )
    if _has_control(text):
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"{field[-1]} contains control characters", field
        )
    return unicodedata.normalize("NFC", text)


def normalize_email(value: str, field: tuple[str, ...] = ("input", "email")) -> str:
    """Syntax-check (no DNS: that would reach the network) and lowercase the address."""
    if len(value) > MAX_EMAIL or _has_control(value):
        raise DomainError(ErrorCode.INVALID_INPUT, "email is not a valid address", field)
    try:
        info = validate_email(value.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise DomainError(ErrorCode.INVALID_INPUT, "email is not a valid address", field) from None
    return info.normalized.lower()


def normalize_phone(value: str, field: tuple[str, ...] = ("input", "phoneNumber")) -> str:
    """E.164 only (+ and 8-15 digits); spaces, dots and dashes are tolerated and removed."""
    compact = re.sub(r"[ .\-()]", "", value)
    if len(value) > 32 or not _PHONE.fullmatch(compact):
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            "phone number must be in international format, e.g. +2348012345678",
            field,
        )
    return compact


def check_password(password: str, email: str, field: tuple[str, ...]) -> None:
    """At least 10 characters, not only digits, not the email (or its local part)."""
    if len(password) > MAX_PASSWORD:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"password is longer than {MAX_PASSWORD} characters", field
        )
    if len(password) < MIN_PASSWORD:
        raise DomainError(
            ErrorCode.WEAK_PASSWORD, f"password must have at least {MIN_PASSWORD} characters", field
        )
    if password.isdigit():
        raise DomainError(ErrorCode.WEAK_PASSWORD, "password must not be only digits", field)
    lowered = password.strip().lower()
    if lowered in (email.lower(), email.split("@", 1)[0].lower()):
        raise DomainError(ErrorCode.WEAK_PASSWORD, "password must not be your email", field)


def review_reason(reason: str | None, approve: bool, refused: str) -> str | None:
    """A staff decision's reason: optional to approve, required to refuse (``refused`` says
    so); at most MAX_REASON characters either way."""
    field = ("input", "reason")
    cleaned = clean_text(reason, field, max_len=MAX_REASON, required=False) if reason else ""
    if not approve and not cleaned:
        raise DomainError(ErrorCode.INVALID_INPUT, refused, field)
    return cleaned or None
