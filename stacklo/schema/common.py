"""Scalars, enums, Money, errors and Relay connections shared by every type module."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

import strawberry
from graphql import StringValueNode, ValueNode
from strawberry import relay
from strawberry.schema.types.base_scalars import DateDefinition, DateTimeDefinition

from stacklo.domain import money
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import KycStatus, Role, WalletStatus
from stacklo.schema import docs

# Domain enums exposed as-is: one source of truth for names and values. ``described_enum``
# registers the class in place (returned unchanged) with the words of ``schema/docs.py``.
docs.described_enum(
    money.CurrencyCode,
    "A supported currency: ISO 4217 fiat codes and crypto tickers.",
    docs.CURRENCY_CODES,
)
docs.described_enum(money.CurrencyKind, "Fiat money or a crypto asset.", docs.CURRENCY_KINDS)
docs.described_enum(
    ErrorCode,
    "Why a mutation refused its input (UserError.code). Queries report the same codes as a "
    "GraphQL error's extensions.code (e.g. INVALID_INPUT for a bad argument).",
    docs.ERROR_CODES,
)
docs.described_enum(
    Role, "What an account may do; staff rights come from the access policy.", docs.ROLES
)
docs.described_enum(
    KycStatus,
    "Where a user's identity verification stands; it decides limits and crypto access.",
    docs.KYC_STATUSES,
)
docs.described_enum(WalletStatus, "Whether a wallet may send money.", docs.WALLET_STATUSES)
CurrencyCode = money.CurrencyCode
CurrencyKind = money.CurrencyKind

MAX_DECIMAL_CHARS = 64
# Plain decimal notation only: ASCII digits, an optional leading minus and at most one point
# with digits on both sides. Python's Decimal() would also take "1_0.00" (10.00), "1e3",
# " 5 ", "Infinity" and other scripts' digits (Arabic-Indic ten): a bank reads amounts one way.
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)


def _serialize_decimal(value: Decimal) -> str:
    # Fixed-point always: str(Decimal("1E-18")) would print exponent notation.
    return format(value, "f")


NOT_A_STRING = (
    'Decimal values are strings (e.g. "12.50"), inline and in variables alike; a number is '
    "refused because JSON numbers reach servers as binary floats"
)


def _parse_decimal(value: object) -> Decimal:
    if not isinstance(value, str):
        raise ValueError(NOT_A_STRING)
    if not value or len(value) > MAX_DECIMAL_CHARS:
        raise ValueError("Decimal must be 1 to 64 characters")
    if not _DECIMAL.fullmatch(value):
        raise ValueError(
            f"{value[:20]!r} is not a plain decimal number: digits 0-9, an optional leading "
            'minus and one optional point with digits on both sides, e.g. "1250.50"'
        )
    return Decimal(value)


def _parse_decimal_literal(node: ValueNode, variables: object = None) -> Decimal:
    # The same rule as a variable: a string. (12.5 inline would be exact, but as a variable
    # it is a float; one rule for both is what clients can rely on.)
    if isinstance(node, StringValueNode):
        return _parse_decimal(node.value)
    raise ValueError(NOT_A_STRING)


# Registered for ``Decimal`` through ``StrawberryConfig.scalar_map`` (stacklo/api.py).
DECIMAL_SCALAR = strawberry.scalar(
    name="Decimal",
    description=(
        'An exact decimal number, always a string (e.g. "1250.00"), in answers and in '
        "requests: inline in the document and in variables alike, send a string in plain "
        "notation (ASCII digits, an optional leading minus, at most one point with digits on "
        "both sides, at most 64 characters). A number (12.5 or 12), an exponent or anything "
        "else is BAD_USER_INPUT. Map it to a string in generated client types."
    ),
    serialize=_serialize_decimal,
    parse_value=_parse_decimal,
    parse_literal=_parse_decimal_literal,
)

# strawberry's own DateTime (same parsing and serialising), with our words.
DATETIME_SCALAR = dataclasses.replace(
    DateTimeDefinition,
    description=(
        "A date and time in ISO 8601, e.g. 2025-01-31T09:15:00.123456+00:00. The server "
        "answers in UTC, offset included; send an offset too (e.g. Z or +01:00)."
    ),
)

# strawberry's own Date, with our words.
DATE_SCALAR = dataclasses.replace(
    DateDefinition,
    description="A calendar day in ISO 8601, e.g. 2026-12-31, with no time or zone.",
)

# The JSON scalar (values pass through unchanged), described without a directive.
JSON_SCALAR = strawberry.scalar(
    name="JSON",
    description="Any JSON value (ECMA-404), passed through as is.",
    serialize=lambda value: value,
    parse_value=lambda value: value,
)


@strawberry.type(description="An ISO 4217 or crypto currency and the precision amounts carry.")
class Currency:
    code: CurrencyCode = strawberry.field(description="The currency's code.")
    name: str = strawberry.field(description='English name, e.g. "Nigerian Naira".')
    kind: CurrencyKind = strawberry.field(description="Fiat or crypto.")
    decimals: int = strawberry.field(
        description="Digits after the decimal point that amounts in this currency carry."
    )

    @classmethod
    def of(cls, code: money.CurrencyCode) -> Currency:
        c = money.currency(code)
        return cls(code=c.code, name=c.name, kind=c.kind, decimals=c.decimals)


@strawberry.type(name="Money", description="An amount of one currency.")
class MoneyType:
    amount: Decimal = strawberry.field(
        description="Exact, with exactly the currency's decimals "
        '(e.g. "12.50" in NGN, "0.00150000" in BTC).'
    )
    currency: CurrencyCode = strawberry.field(description="The amount's currency.")

    @classmethod
    def of(cls, value: money.Money) -> MoneyType:
        q = value.quantized()
        return cls(amount=q.amount, currency=q.currency)


@strawberry.type(
    description="Why a mutation did not do what was asked: a business rule refused the input."
)
class UserError:
    code: ErrorCode = strawberry.field(description="What went wrong; stable, for programs.")
    message: str = strawberry.field(
        description="What went wrong in plain English, for people; wording may change."
    )
    field: list[str] | None = strawberry.field(
        default=None, description='Path to the input field at fault, e.g. ["input", "amount"].'
    )

    @classmethod
    def of(cls, error: DomainError) -> UserError:
        return cls(
            code=error.code, message=error.message, field=list(error.field) if error.field else None
        )


@strawberry.type(description="Where a page sits in its list.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="Whether more items follow; fetch them with after: endCursor."
    )
    has_previous_page: bool = strawberry.field(
        description="True when the page was asked for with after, false otherwise."
    )
    start_cursor: str | None = strawberry.field(
        description="Cursor of the first edge; null when the page is empty."
    )
    end_cursor: str | None = strawberry.field(
        description="Cursor of the last edge, to pass as after; null when the page is empty."
    )


NodeT = TypeVar("NodeT")

# Words several inputs and payloads share.
IDEMPOTENCY_KEY = (
    "1 to 128 printable characters of the client's choosing, scoped to the viewer. A retry "
    "with the same key and the same input answers with the first call's transaction and moves "
    "nothing again; the same key with another input or operation is IDEMPOTENCY_KEY_REUSED. A "
    "request refused by a business rule leaves its key free."
)
AMOUNT = (
    "Greater than zero, under 10^15, with at most the currency's decimals; never rounded "
    "(INVALID_INPUT otherwise)."
)
USER_ERRORS = "Why the mutation was refused; empty when it succeeded."

# The arguments every connection takes, described once.
FIRST = strawberry.argument(
    description="How many items to return: 0 to 100, 20 when omitted. Outside that range the "
    "whole operation is refused before it runs (BAD_USER_INPUT naming the field), so no parent "
    "is nulled. The operation's cost grows with it (QUERY_TOO_COMPLEX past the limit)."
)
AFTER = strawberry.argument(
    description="Return the items after this cursor (an endCursor or edge cursor of this list); "
    "opaque. Any other value refuses the whole operation before it runs (BAD_USER_INPUT naming "
    "the field), so no parent is nulled."
)


@strawberry.type(description="One item of a page and its cursor.")
class Edge(Generic[NodeT]):
    cursor: str = strawberry.field(
        description="Opaque; pass it as after to get the items after this one."
    )
    node: NodeT = strawberry.field(description="The item.")


@strawberry.type(description="One page of a list, newest first (cursor pagination: first, after).")
class Connection(Generic[NodeT]):
    page_info: PageInfo = strawberry.field(description="Cursors and whether more items follow.")
    edges: list[Edge[NodeT]] = strawberry.field(description="The page's items, newest first.")

    @classmethod
    def build(
        cls, nodes: list[tuple[str, NodeT]], *, has_next: bool, has_previous: bool
    ) -> Connection[NodeT]:
        edges = [Edge(cursor=c, node=n) for c, n in nodes]
        return cls(
            page_info=PageInfo(
                has_next_page=has_next,
                has_previous_page=has_previous,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            edges=edges,
        )


def page_size(first: int | None, default: int, maximum: int) -> int:
    """``first`` or ``default``. The operation limits refuse a ``first`` outside 0..maximum
    before execution (``limits.OutOfRange``); this check stays for callers outside GraphQL."""
    if first is None:
        return default
    if first < 0 or first > maximum:
        raise DomainError(
            ErrorCode.INVALID_INPUT, f"first must be between 0 and {maximum}", ("first",)
        )
    return first


def encode_cursor(*parts: object) -> str:
    raw = "|".join(str(p) for p in parts)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, count: int) -> list[str] | None:
    """The cursor's parts, or None when no cursor was given; a forged one is INVALID_INPUT."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raw = ""
    parts = raw.split("|")
    if len(cursor) > 200 or len(parts) != count or not all(parts):
        raise DomainError(ErrorCode.INVALID_INPUT, "after is not a valid cursor", ("after",))
    return parts


def decode_time_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """A (created_at, id) keyset cursor; a forged one is INVALID_INPUT."""
    parts = decode_cursor(cursor, 2)
    if parts is None:
        return None
    try:
        return datetime.fromisoformat(parts[0]), uuid.UUID(parts[1])
    except ValueError:
        raise DomainError(
            ErrorCode.INVALID_INPUT, "after is not a valid cursor", ("after",)
        ) from None


def decode_sequence_cursor(cursor: str | None) -> int | None:
    """A cursor of one increasing number (statement lines, audit events); a forged one is
    INVALID_INPUT."""
    parts = decode_cursor(cursor, 1)
    if parts is None:
        return None
    if not parts[0].isdigit():
        raise DomainError(ErrorCode.INVALID_INPUT, "after is not a valid cursor", ("after",))
    return int(parts[0])


def decode_global_id(value: str, type_name: str | None = None) -> tuple[str, str] | None:
    """(type, id) of a global ID, or None when malformed or of another type."""
    try:
        gid = relay.GlobalID.from_id(value)
    except Exception:  # malformed base64 or shape: treated exactly like an unknown id
        return None
    if type_name is not None and gid.type_name != type_name:
        return None
    return gid.type_name, gid.node_id


def node_uuid(global_id: str | None, type_name: str) -> uuid.UUID | None:
    """The UUID inside a global ID of ``type_name``; None for anything else (NOT_FOUND)."""
    decoded = decode_global_id(global_id, type_name) if global_id else None
    if decoded is None:
        return None
    try:
        return uuid.UUID(decoded[1])
    except ValueError:
        return None
