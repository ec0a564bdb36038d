"""Subscriptions: transactionUpdated, walletUpdated (resumable), platformActivity (staff)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from typing import Annotated

import strawberry

from stacklo.domain.errors import InvalidCursor
from stacklo.domain.events import (
    TRANSACTION,
    WALLET,
    OutboxEvent,
    transaction_from_dict,
    wallet_from_dict,
)
from stacklo.realtime.channels import PLATFORM, user_channel
from stacklo.realtime.streams import SlowConsumer
from stacklo.schema.common import decode_cursor, decode_global_id, encode_cursor
from stacklo.schema.context import Info
from stacklo.schema.ledger import Transaction, TransactionEvent, Wallet, WalletEvent

# Close code for a subscriber whose buffer overflowed (documented in the README).
SLOW_CONSUMER_CLOSE = 4413


AFTER = strawberry.argument(
    description="The cursor of the last event received: missed events are replayed first, "
    "then live ones follow. Opaque."
)


def _position(after: str | None) -> int | None:
    if after is None:
        return None
    try:
        parts = decode_cursor(after, 2)
    except Exception:
        raise InvalidCursor() from None
    assert parts is not None
    if parts[0] != "p" or not parts[1].isdigit():
        raise InvalidCursor()
    return int(parts[1])


def _cursor(event: OutboxEvent) -> str:
    return encode_cursor("p", event.position)


def _target(global_id: str | None, type_name: str) -> str | None:
    """The raw id to filter on; an unknown or malformed id matches nothing."""
    if global_id is None:
        return None
    decoded = decode_global_id(global_id, type_name)
    return decoded[1] if decoded else "-"


async def close_slow(info: Info) -> None:
    socket = info.context.request
    with contextlib.suppress(Exception):
        await socket.close(code=SLOW_CONSUMER_CLOSE, reason="subscriber too slow: buffer overflow")


async def transaction_updated(
    info: Info,
    id: Annotated[
        strawberry.ID | None,
        strawberry.argument(
            description="Only this transaction (a global ID); a foreign or unknown id matches "
            "nothing."
        ),
    ] = None,
    after: Annotated[str | None, AFTER] = None,
) -> AsyncGenerator[TransactionEvent, None]:
    viewer = await info.context.require_viewer()
    streams = info.context.services.streams
    position = _position(after)
    only = _target(id, "Transaction")
    if position is not None:
        await streams.check_cursor(position)
    async with streams.slot(viewer.user.id):
        try:
            async for event in streams.events(
                user_channel(viewer.user.id),
                lambda e: e.topic == TRANSACTION and (only is None or e.aggregate_id == only),
                after=position,
                replay=streams.user_replay(viewer.user.id, TRANSACTION),
            ):
                tx = transaction_from_dict(event.payload)
                yield TransactionEvent(cursor=_cursor(event), transaction=Transaction.of(tx))
        except SlowConsumer:
            await close_slow(info)


async def wallet_updated(
    info: Info,
    wallet_id: Annotated[
        strawberry.ID | None,
        strawberry.argument(
            description="Only this wallet (a global ID); a foreign or unknown id matches nothing."
        ),
    ] = None,
    after: Annotated[str | None, AFTER] = None,
) -> AsyncGenerator[WalletEvent, None]:
    viewer = await info.context.require_viewer()
    streams = info.context.services.streams
    position = _position(after)
    only = _target(wallet_id, "Wallet")
    if position is not None:
        await streams.check_cursor(position)
    async with streams.slot(viewer.user.id):
        try:
            async for event in streams.events(
                user_channel(viewer.user.id),
                lambda e: e.topic == WALLET and (only is None or e.aggregate_id == only),
                after=position,
                replay=streams.user_replay(viewer.user.id, WALLET),
            ):
                yield WalletEvent(
                    cursor=_cursor(event), wallet=Wallet.of(wallet_from_dict(event.payload))
                )
        except SlowConsumer:
            await close_slow(info)


async def platform_activity_events(
    info: Info,
    after: Annotated[str | None, AFTER] = None,
) -> AsyncGenerator[TransactionEvent, None]:
    """Staff only (checked by the field's permission): every transaction as it changes,
    resumable like the viewer's own streams."""
    viewer = await info.context.require_viewer()
    streams = info.context.services.streams
    position = _position(after)
    if position is not None:
        await streams.check_cursor(position)
    async with streams.slot(viewer.user.id):
        try:
            async for event in streams.events(
                PLATFORM,
                lambda e: e.topic == TRANSACTION,
                after=position,
                replay=streams.user_replay(None, TRANSACTION),
            ):
                tx = transaction_from_dict(event.payload)
                yield TransactionEvent(cursor=_cursor(event), transaction=Transaction.of(tx))
        except SlowConsumer:
            await close_slow(info)


async def platform_activity(info: Info) -> AsyncGenerator[Transaction, None]:
    """Staff only (checked by the field's permission): every transaction as it changes."""
    viewer = await info.context.require_viewer()
    streams = info.context.services.streams
    async with streams.slot(viewer.user.id):
        try:
            async for event in streams.events(PLATFORM, lambda e: e.topic == TRANSACTION):
                yield Transaction.of(transaction_from_dict(event.payload))
        except SlowConsumer:
            await close_slow(info)
