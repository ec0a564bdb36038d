"""Subscriptions: transactionUpdated, walletUpdated (resumable), platformActivity (staff).

Each resolver checks its arguments and takes its slot, then hands its events on
(``stacklo/schema/subscriptions.py``): the viewer's own events to be executed for them alone,
the staff feeds to be executed once for every staff member who reads them the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Hashable, Iterable
from typing import Annotated, Any

import strawberry
from strawberry.types.nodes import SelectedField, Selection

from stacklo.domain.errors import InvalidCursor
from stacklo.domain.events import (
    TRANSACTION,
    WALLET,
    OutboxEvent,
    transaction_from_dict,
    wallet_from_dict,
)
from stacklo.domain.models import Viewer
from stacklo.realtime.broadcast import BroadcastLost
from stacklo.realtime.channels import PLATFORM, user_channel
from stacklo.realtime.streams import (
    BROADCAST_LOST_CLOSE,
    BROADCAST_LOST_REASON,
    SLOW_CONSUMER_CLOSE,
    SLOW_CONSUMER_REASON,
    SlowConsumer,
    Streams,
)
from stacklo.schema.common import decode_cursor, decode_global_id, encode_cursor
from stacklo.schema.context import Info
from stacklo.schema.ledger import Transaction, TransactionEvent, Wallet, WalletEvent
from stacklo.schema.subscriptions import delivered

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
        await socket.close(code=SLOW_CONSUMER_CLOSE, reason=SLOW_CONSUMER_REASON)


async def close_lost(info: Info) -> None:
    """The live events were interrupted (the broadcast connection was lost): 1012, and the
    client subscribes again with its last cursor."""
    socket = info.context.request
    with contextlib.suppress(Exception):
        await socket.close(code=BROADCAST_LOST_CLOSE, reason=BROADCAST_LOST_REASON)


def _selects(selections: Iterable[Selection], name: str) -> bool:
    """Whether field ``name`` is asked for anywhere in ``selections`` (fragments included)."""
    for selection in selections:
        if isinstance(selection, SelectedField) and selection.name == name:
            return True
        if _selects(selection.selections, name):
            return True
    return False


def staff_audience(info: Info, viewer: Viewer) -> Hashable:
    """Who reads a platform-wide transaction the same way: staff with the same roles (what
    the visibility rule decides by), unless the selection asks for ``counterparty``, which is
    seen from the viewer's own side."""
    roles = tuple(sorted(role.value for role in viewer.user.roles))
    relative = _selects(info.selected_fields, "counterparty")
    return ("staff", roles, viewer.user.id if relative else None)


async def _transaction_events(
    streams: Streams, channel: str, accept: Callable[[OutboxEvent], bool], **replaying: Any
) -> AsyncIterator[TransactionEvent]:
    async for event in streams.events(channel, accept, **replaying):
        tx = transaction_from_dict(event.payload)
        yield TransactionEvent(cursor=_cursor(event), transaction=Transaction.of(tx))


async def _wallet_events(
    streams: Streams, channel: str, accept: Callable[[OutboxEvent], bool], **replaying: Any
) -> AsyncIterator[WalletEvent]:
    async for event in streams.events(channel, accept, **replaying):
        yield WalletEvent(cursor=_cursor(event), wallet=Wallet.of(wallet_from_dict(event.payload)))


async def _transactions(streams: Streams) -> AsyncIterator[Transaction]:
    async for event in streams.events(PLATFORM, lambda e: e.topic == TRANSACTION):
        yield Transaction.of(transaction_from_dict(event.payload))


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
    try:
        async for item in delivered(
            streams.slot(viewer.user.id),
            lambda: _transaction_events(
                streams,
                user_channel(viewer.user.id),
                lambda e: e.topic == TRANSACTION and (only is None or e.aggregate_id == only),
                after=position,
                replay=streams.user_replay(viewer.user.id, TRANSACTION),
            ),
        ):
            yield item
    except SlowConsumer:
        await close_slow(info)
    except BroadcastLost:
        await close_lost(info)


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
    try:
        async for item in delivered(
            streams.slot(viewer.user.id),
            lambda: _wallet_events(
                streams,
                user_channel(viewer.user.id),
                lambda e: e.topic == WALLET and (only is None or e.aggregate_id == only),
                after=position,
                replay=streams.user_replay(viewer.user.id, WALLET),
            ),
        ):
            yield item
    except SlowConsumer:
        await close_slow(info)
    except BroadcastLost:
        await close_lost(info)


async def platform_activity_events(
    info: Info,
    after: Annotated[str | None, AFTER] = None,
) -> AsyncGenerator[TransactionEvent, None]:
    """Staff only (checked by the field's permission): every transaction as it changes,
    resumable like the viewer's own streams. Without ``after`` it is the same live feed for
    every staff member with the same roles, executed once for them all."""
    viewer = await info.context.require_viewer()
    streams = info.context.services.streams
    position = _position(after)
    if position is not None:
        await streams.check_cursor(position)
    try:
        async for item in delivered(
            streams.slot(viewer.user.id),
            lambda: _transaction_events(
                streams,
                PLATFORM,
                lambda e: e.topic == TRANSACTION,
                after=position,
                replay=streams.user_replay(None, TRANSACTION),
            ),
            audience=staff_audience(info, viewer) if position is None else None,
        ):
            yield item
    except SlowConsumer:
        await close_slow(info)
    except BroadcastLost:
        await close_lost(info)


async def platform_activity(info: Info) -> AsyncGenerator[Transaction, None]:
    """Staff only (checked by the field's permission): every transaction as it changes, one
    execution for every staff member with the same roles and selection."""
    viewer = await info.context.require_viewer()
    streams = info.context.services.streams
    try:
        async for item in delivered(
            streams.slot(viewer.user.id),
            lambda: _transactions(streams),
            audience=staff_audience(info, viewer),
        ):
            yield item
    except SlowConsumer:
        await close_slow(info)
    except BroadcastLost:
        await close_lost(info)
