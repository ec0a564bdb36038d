"""The outbox: events written with the change, claimed and positioned by one relay at a time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import TextClause, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from stacklo.data.tables import outbox_events, outbox_state
from stacklo.domain.events import (
    NOTIFICATION,
    NOTIFICATION_CREATED,
    RATES,
    SESSIONS_ENDED,
    TRANSACTION,
    USER_CHANGED,
    WALLET,
    OutboxEvent,
    transaction_to_dict,
    wallet_to_dict,
)
from stacklo.domain.fx import Snapshot
from stacklo.domain.ledger import Transaction
from stacklo.domain.models import AccountKind, Wallet
from stacklo.observability import log

# One relay leads at a time (a session advisory lock held on its listening connection), so
# live delivery is in position order; the others stand by and take over if it dies.
RELAY_LOCK = 7_246_002
RATE_FEED_LOCK = 7_246_003
SCHEDULER_LOCK = 7_246_004
NOTIFIER_LOCK = 7_246_005
# Held for the whole of a relay's claiming transaction (see ``Outbox.claiming``).
CLAIM_LOCK = 7_246_006


class RelayConnection:
    """A dedicated connection: leadership (advisory lock) and LISTEN for outbox commits.

    Other singleton jobs (the rate feed) use it with their own lock and no LISTEN.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        lock_key: int = RELAY_LOCK,
        listen: str | None = "stacklo_outbox",
    ):
        self._engine = engine
        self._lock = lock_key
        self._listen = listen
        self._conn: AsyncConnection | None = None
        # Set when the server ends this connection's session (a restart, a crash, a killed
        # backend), which ends the lead with it: asyncpg notices the socket close at once,
        # where ``alive()`` would only find out at the job's next round.
        self.lost = asyncio.Event()

    async def lead(self, on_notify: Callable[..., None]) -> bool:
        """Try to become the leader; on success, also listen for commits."""
        if self._conn is None:
            self._conn = await self._engine.connect()
            await self._conn.execution_options(isolation_level="AUTOCOMMIT")
            self.lost.clear()
            raw = await self._conn.get_raw_connection()
            raw.driver_connection.add_termination_listener(lambda *_: self.lost.set())  # type: ignore[union-attr]
        got = bool(
            (
                await self._conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._lock})
            ).scalar()
        )
        if got and self._listen:
            raw = await self._conn.get_raw_connection()
            await raw.driver_connection.add_listener(self._listen, on_notify)  # type: ignore[union-attr]
        return got

    async def alive(self) -> bool:
        if self._conn is None:
            return False
        try:
            await self._conn.execute(text("SELECT 1"))
        except Exception:  # the server went away: leadership is lost with the session
            return False
        return True

    async def close(self) -> None:
        """Give up leadership. The connection is discarded, not pooled: a pooled connection
        would keep the session's advisory lock (and LISTEN), and with it the leadership, for
        whatever borrowed it next."""
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.invalidate()
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None


class OutboxBell:
    """Wakes the relay after commits, from outside the committing transactions.

    A NOTIFY inside a transaction holds PostgreSQL's notification lock from its commit's start
    to its end, WAL flush included, so every transaction that notified committed one at a
    time: measured here, commits queued on that lock and throughput stopped growing with
    clients. Instead, a unit of work rings once it has committed; the bell sends one NOTIFY on
    its own connection, a transaction that writes nothing, and rings that land while one is
    in flight are answered by the next. A ring lost to a crash only delays: the relay polls.
    """

    def __init__(self, engine: AsyncEngine, channel: str = "stacklo_outbox", pause: float = 0.001):
        self._engine = engine
        self._channel = channel
        self._pause = pause  # at most one NOTIFY per pause, however many commits ring
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Send a NOTIFY for the rings since the last, until ``stop`` is set."""
        conn: AsyncConnection | None = None
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._rung.wait(), timeout=1.0)
                if not self._rung.is_set():
                    continue
                self._rung.clear()
                try:
                    if conn is None:
                        conn = await self._engine.connect()
                        await conn.execution_options(isolation_level="AUTOCOMMIT")
                    await conn.execute(text("SELECT pg_notify(:c, '')"), {"c": self._channel})
                except Exception as e:  # the relay's poll covers what could not be rung
                    log.warning("outbox_bell_failed", error=repr(e))
                    if conn is not None:
                        with contextlib.suppress(Exception):
                            await conn.invalidate()
                        conn = None
                    await asyncio.sleep(1.0)
                await asyncio.sleep(self._pause)
        finally:
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()


# ---------------------------------------------------------------------------- writing
#
# The one way outbox rows are written: ``announced(events, **changes)`` makes one statement of
# the change (each a data-modifying CTE) and the INSERT of the events that announce it, so
# the change and its events commit together or not at all, in one round trip. Every
# repository that changes something a subscriber or a worker must see writes through it with
# one of the event fragments below; their parameters are named ev_* to keep clear of the
# change's own.


def announced(events: str, **changes: str) -> TextClause:
    ctes = ",\n       ".join(f"{name} AS ({sql})" for name, sql in changes.items())
    return text(f"WITH {ctes}\n       {events}")


def _insert_events(select: str) -> str:
    return f"INSERT INTO outbox_events (topic, aggregate_id, audience, payload) {select}"


# What a booking announces (the statement's ``booked`` CTE, see ``Ledger.book``): each customer
# wallet it saved, then the transaction, created or changing status, for the owners of its
# wallets and the owner of the merchant whose payable it touches. One INSERT, in that order.
BOOKED_EVENTS = _insert_events(
    f"""SELECT e.topic, e.aggregate_id, e.audience, e.payload FROM (
         SELECT 0 AS ord, '{WALLET}' AS topic, b.wallet_id::text AS aggregate_id,
                ARRAY[b.user_id] AS audience,
                jsonb_build_object('id', b.wallet_id::text, 'user_id', b.user_id::text,
                                   'currency', b.currency, 'balance', b.balance::text,
                                   'held', b.held::text, 'status', b.status,
                                   'created_at', b.created_at, 'kind', b.kind) AS payload
         FROM booked b WHERE b.leg IS NULL AND b.kind = 'CUSTOMER' AND b.user_id IS NOT NULL
         UNION ALL
         SELECT 1, '{TRANSACTION}', :ev_aggregate,
                ARRAY(SELECT coalesce(w.user_id, m.user_id) FROM wallets w
                      LEFT JOIN merchants m ON m.id = w.merchant_id
                      WHERE w.id = ANY(CAST(:ev_wallets AS uuid[]))
                        AND coalesce(w.user_id, m.user_id) IS NOT NULL),
                CAST(:ev_payload AS jsonb)
       ) AS e ORDER BY e.ord, e.aggregate_id"""  # noqa: S608 - constants only, values are bound
)
# Customer wallets opened or changed, one event each, for their owner (none: no row).
WALLET_EVENTS = _insert_events(
    f"""SELECT '{WALLET}', v.id, ARRAY[v.user_id], CAST(v.payload AS jsonb)
       FROM unnest(CAST(:ev_ids AS text[]), CAST(:ev_users AS uuid[]),
                   CAST(:ev_payloads AS text[])) AS v(id, user_id, payload)"""  # noqa: S608
)
# Sessions a statement ended (its ``revoked`` CTE of id, user_id), one event per user.
SESSIONS_ENDED_EVENTS = _insert_events(
    f"""SELECT '{SESSIONS_ENDED}', user_id::text, ARRAY[user_id],
              jsonb_build_object('sessions', array_agg(id::text), 'reason', :ev_reason)
       FROM revoked GROUP BY user_id
       RETURNING jsonb_array_length(payload -> 'sessions') AS ended"""  # noqa: S608
)
# A user a statement changed (its ``changed`` CTE of id): roles or identity status.
USER_CHANGED_EVENT = _insert_events(
    f"""SELECT '{USER_CHANGED}', id::text, ARRAY[id], jsonb_build_object('user', id::text)
       FROM changed"""  # noqa: S608 - constants only
)
# A message for one user (e.g. an installment falling due), sent only when the statement's
# ``reminded`` CTE marked a row: a second run of the same reminder marks nothing, sends nothing.
NOTIFICATION_EVENT = _insert_events(
    f"""SELECT '{NOTIFICATION}', :ev_aggregate, ARRAY[CAST(:ev_user AS uuid)],
              CAST(:ev_payload AS jsonb) FROM reminded"""  # noqa: S608 - constants only
)
# A notification just written (the statement's ``made`` CTE: id, user_id), for its user's
# notificationReceived; nothing when the notification already existed.
NOTIFICATION_CREATED_EVENT = _insert_events(
    f"""SELECT '{NOTIFICATION_CREATED}', made.id::text, ARRAY[made.user_id],
              CAST(:ev_payload AS jsonb) FROM made RETURNING id"""  # noqa: S608 - constants only
)
# A rate feed reading, for every ``rateUpdated`` subscriber (public: no audience).
RATES_EVENT = _insert_events(
    f"SELECT '{RATES}', 'rates', '{{}}'::uuid[], CAST(:ev_payload AS jsonb)"
)


def transaction_event(tx: Transaction) -> dict[str, Any]:
    """The transaction's parameters of ``BOOKED_EVENTS``."""
    wallets = [w for w in (tx.source_wallet_id, tx.target_wallet_id) if w is not None]
    return {
        "ev_aggregate": str(tx.id),
        "ev_wallets": wallets,
        "ev_payload": json.dumps(transaction_to_dict(tx)),
    }


def wallet_events(changed: Sequence[Wallet]) -> dict[str, Any]:
    """Parameters of ``WALLET_EVENTS``: customer wallets only."""
    mine = [w for w in changed if w.kind is AccountKind.CUSTOMER and w.user_id is not None]
    return {
        "ev_ids": [str(w.id) for w in mine],
        "ev_users": [w.user_id for w in mine],
        "ev_payloads": [json.dumps(wallet_to_dict(w)) for w in mine],
    }


def rates_event(snapshot: Snapshot) -> dict[str, Any]:
    """Parameters of ``RATES_EVENT``."""
    return {"ev_payload": json.dumps(snapshot.to_dict())}


# ---------------------------------------------------------------------------- the relay

_SET_POSITIONS = text(
    """UPDATE outbox_events SET position = v.position
       FROM unnest(CAST(:ids AS bigint[]), CAST(:positions AS bigint[])) AS v(id, position)
       WHERE outbox_events.id = v.id"""
)
_MARK_PUBLISHED = text(
    "UPDATE outbox_events SET published_at = now() WHERE id = ANY(CAST(:ids AS bigint[]))"
)


_CLAIMING = text("SELECT pg_advisory_xact_lock(:k)")


def _event(row: Any, position: int | None = None) -> OutboxEvent:
    return OutboxEvent(
        id=row.id,
        position=position if position is not None else row.position,
        topic=row.topic,
        aggregate_id=row.aggregate_id,
        audience=tuple(row.audience),
        payload=dict(row.payload),
    )


class Outbox:
    """Claims, positions, replays and prunes events; the repositories write them."""

    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    # -------------------------------------------------------------- the relay

    async def claiming(self) -> None:
        """Wait for any other relay's claim to commit or roll back; hold off others until this
        transaction ends. Leadership alone does not order claims: a leader whose session was
        cut (or that was killed) may still be committing positions when the next one starts,
        and events it claims would then publish after later ones, below positions subscribers
        have already seen (and drop)."""
        await self._conn.execute(_CLAIMING, {"k": CLAIM_LOCK})

    async def claim(self, limit: int) -> list[OutboxEvent]:
        """Give the next unpositioned events positions, in id order (commit-safe per aggregate:
        a row lock orders two changes of one aggregate). Commit before publishing them, so a
        subscriber's replay can always see what it may already have received live."""
        rows = (
            await self._conn.execute(
                select(outbox_events)
                .where(outbox_events.c.position.is_(None))
                .order_by(outbox_events.c.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
        ).all()
        if not rows:
            return []
        positions = (
            (
                await self._conn.execute(
                    text("SELECT nextval('outbox_position') FROM generate_series(1, :n)"),
                    {"n": len(rows)},
                )
            )
            .scalars()
            .all()
        )
        events = [_event(r, int(p)) for r, p in zip(rows, sorted(positions), strict=True)]
        await self._conn.execute(
            _SET_POSITIONS,
            {"ids": [e.id for e in events], "positions": [e.position for e in events]},
        )
        return events

    async def positioned_unpublished(self, limit: int) -> list[OutboxEvent]:
        """Events positioned but not yet confirmed published: a relay died mid-batch."""
        rows = (
            await self._conn.execute(
                select(outbox_events)
                .where(
                    outbox_events.c.position.is_not(None), outbox_events.c.published_at.is_(None)
                )
                .order_by(outbox_events.c.position)
                .limit(limit)
            )
        ).all()
        return [_event(r) for r in rows]

    async def mark_published(self, events: Sequence[OutboxEvent]) -> None:
        if events:
            await self._conn.execute(_MARK_PUBLISHED, {"ids": [e.id for e in events]})

    async def oldest_unpublished(self) -> datetime | None:
        oldest: datetime | None = (
            await self._conn.execute(
                select(func.min(outbox_events.c.created_at)).where(
                    outbox_events.c.published_at.is_(None)
                )
            )
        ).scalar()
        return oldest

    async def prune(self, older_than: datetime) -> int:
        """Delete published events older than the retention window; remember how far."""
        result = await self._conn.execute(
            text(
                """WITH gone AS (DELETE FROM outbox_events WHERE published_at IS NOT NULL
                                 AND created_at < :cutoff RETURNING position)
                   UPDATE outbox_state SET pruned_through = GREATEST(pruned_through,
                          COALESCE((SELECT max(position) FROM gone), 0))
                   WHERE id = 1 RETURNING (SELECT count(*) FROM gone)"""
            ),
            {"cutoff": older_than},
        )
        return int(result.scalar() or 0)

    # -------------------------------------------------------------- subscribers

    async def pruned_through(self) -> int:
        return int((await self._conn.execute(select(outbox_state.c.pruned_through))).scalar() or 0)

    async def notify(self, user_id: uuid.UUID, kind: str, data: Mapping[str, Any]) -> None:
        """A notice for one user, written in the caller's transaction: a notification event
        with no change of its own to announce (a decision, a new device)."""
        await self._conn.execute(
            outbox_events.insert().values(
                topic=NOTIFICATION,
                aggregate_id=str(user_id),
                audience=[user_id],
                payload={"kind": kind, **{k: str(v) for k, v in data.items()}},
            )
        )

    async def last_position(self) -> int:
        value = (await self._conn.execute(select(func.max(outbox_events.c.position)))).scalar()
        return int(value or 0)

    async def replay(
        self,
        user_id: uuid.UUID | None,
        topic: str,
        after: int,
        *,
        until: int | None = None,
        limit: int = 1000,
    ) -> list[OutboxEvent]:
        """What ``user_id`` may see of ``topic`` after position ``after``, in position order;
        every event of ``topic`` when ``user_id`` is None (staff feeds)."""
        query = (
            select(outbox_events)
            .where(outbox_events.c.position > after, outbox_events.c.topic == topic)
            .order_by(outbox_events.c.position)
            .limit(limit)
        )
        if user_id is not None:
            query = query.where(outbox_events.c.audience.contains([user_id]))
        if until is not None:
            query = query.where(outbox_events.c.position < until)
        return [_event(r) for r in (await self._conn.execute(query)).all()]

    async def position_of(self, topic: str, aggregate_id: str, user_id: uuid.UUID) -> int | None:
        # The audience's GIN index narrows this to the user's own events.
        value = (
            await self._conn.execute(
                select(outbox_events.c.position).where(
                    outbox_events.c.topic == topic,
                    outbox_events.c.aggregate_id == aggregate_id,
                    outbox_events.c.audience.contains([user_id]),
                    outbox_events.c.position.is_not(None),
                )
            )
        ).scalar()
        return None if value is None else int(value)
