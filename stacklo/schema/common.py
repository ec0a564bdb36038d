"""Scalars, enums, Money, errors and Relay connections shared by every type module."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Generic, TypeVar

import strawberry
from graphql import FloatValueNode, IntValueNode, StringValueNode, ValueNode
from strawberry import relay

from stacklo.domain import money
from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.models import KycStatus, Role, WalletStatus

# Domain enums exposed as-is: one source of truth for names and values.
# (strawberry.enum registers the class in place and returns it unchanged.)
for _enum in (money.CurrencyCode, money.CurrencyKind, ErrorCode, Role, KycStatus, WalletStatus):
    strawberry.enum(_enum)
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


def _parse_decimal(value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise ValueError('Decimal values are sent as strings (e.g. "12.50"), never as floats')
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError("Decimal must be a string")
    if not value or len(value) > MAX_DECIMAL_CHARS:
        raise ValueError("Decimal must be 1 to 64 characters")
    if not _DECIMAL.fullmatch(value):
        raise ValueError(
            f"{value[:20]!r} is not a plain decimal number: digits 0-9, an optional leading "
            'minus and one optional point with digits on both sides, e.g. "1250.50"'
        )
    return Decimal(value)


def _parse_decimal_literal(node: ValueNode, variables: object = None) -> Decimal:
    # A float literal in the document keeps its exact text, so it is safe to accept.
    if isinstance(node, (StringValueNode, IntValueNode, FloatValueNode)):
        return _parse_decimal(node.value)
    raise ValueError("Decimal must be a string")


# Registered for ``Decimal`` through ``StrawberryConfig.scalar_map`` (stacklo/api.py).
DECIMAL_SCALAR = strawberry.scalar(
    name="Decimal",
    description='An exact decimal number, serialised as a string (e.g. "1250.00").',
    serialize=_serialize_decimal,
    parse_value=_parse_decimal,
    parse_literal=_parse_decimal_literal,
)


@strawberry.type(description="An ISO 4217 or crypto currency and the precision amounts carry.")
class Currency:
    code: CurrencyCode
    name: str
    kind: CurrencyKind
    decimals: int = strawberry.field(
        description="Digits after the decimal point that amounts in this currency carry."
    )

    @classmethod
    def of(cls, code: money.CurrencyCode) -> Currency:
        c = money.currency(code)
        return cls(code=c.code, name=c.name, kind=c.kind, decimals=c.decimals)


@strawberry.type(name="Money")
class MoneyType:
    amount: Decimal
    currency: CurrencyCode

    @classmethod
    def of(cls, value: money.Money) -> MoneyType:
        q = value.quantized()
        return cls(amount=q.amount, currency=q.currency)


@strawberry.type
class UserError:
    code: ErrorCode
    message: str
    field: list[str] | None = strawberry.field(
        default=None, description='Path to the input field at fault, e.g. ["input", "amount"].'
    )

    @classmethod
    def of(cls, error: DomainError) -> UserError:
        return cls(
            code=error.code, message=error.message, field=list(error.field) if error.field else None
        )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


NodeT = TypeVar("NodeT")


@strawberry.type
class Edge(Generic[NodeT]):
    cursor: str
    node: NodeT


@strawberry.type
class Connection(Generic[NodeT]):
    page_info: PageInfo
    edges: list[Edge[NodeT]]

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
    """Validate ``first``: 0..maximum (INVALID_INPUT beyond), ``default`` when omitted."""
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
