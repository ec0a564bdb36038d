"""Ledger storage: locking, transactions with their status history, entries, statements."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import (
    Row,
    TextClause,
    and_,
    bindparam,
    func,
    literal_column,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from stacklo.data.outbox import BOOKED_EVENTS, announced, transaction_event
from stacklo.data.repositories import wallet_of_row
from stacklo.data.tables import (
    daily_outgoing,
    idempotency_keys,
    ledger_entries,
    ledger_transactions,
    provider_events,
    transaction_status_changes,
    wallets,
)
from stacklo.domain.ledger import (
    Answer,
    Booking,
    KeyTaken,
    Refused,
    StatusChange,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from stacklo.domain.models import AccountKind, AuditEvent, Page, Wallet
from stacklo.domain.money import CurrencyCode

# Hot platform accounts (provider clearing, fees) are split over this many rows so that
# concurrent deposits do not queue on one row lock. The account's balance is the sum.
PLATFORM_SHARDS = 8
MERCHANT_SHARDS = 4


# A booking is one statement: ``stacklo_book_accounts`` (migration 0010) locks the accounts,
# checks them and saves them, and returns the entries and the accounts' final states (the
# ``booked`` CTE); around it, the transaction (new, or its next status) with its status history
# and entries, the outbox events, the audit record and the idempotency answer. A statement is a
# round trip and a pass through the driver on the hottest path; the foreign keys from history
# and entries to the transaction are checked at the statement's end, when its row is there.
_BOOKED = """SELECT * FROM stacklo_book_accounts(
         CAST(:p_wallets AS uuid[]), CAST(:p_currencies AS text[]), CAST(:p_amounts AS numeric[]),
         CAST(:p_releases AS numeric[]), CAST(:h_wallets AS uuid[]),
         CAST(:h_amounts AS numeric[]), CAST(:senders AS uuid[]), CAST(:cap_user AS uuid),
         CAST(:cap_currency AS text), CAST(:cap_day AS date),
         CAST(:cap_limit AS numeric), CAST(:cap_amount AS numeric), CAST(:claim_user AS uuid),
         CAST(:claim_key AS text), CAST(:claim_operation AS text), CAST(:claim_hash AS text),
         CAST(:claim_response AS jsonb))"""
_HISTORY = """INSERT INTO transaction_status_changes (transaction_id, status, reason, at)
       SELECT :tx, v.status, v.reason, v.at
       FROM unnest(CAST(:statuses AS varchar[]), CAST(:reasons AS text[]),
                   CAST(:ats AS timestamptz[])) AS v(status, reason, at)"""
_ENTRIES = """INSERT INTO ledger_entries
         (transaction_id, wallet_id, currency, amount, balance_after, created_at)
       SELECT :tx, b.wallet_id, b.currency, b.amount, b.balance, :at
       FROM booked b WHERE b.leg IS NOT NULL ORDER BY b.leg"""
_AUDIT = """INSERT INTO audit_events
         (actor_id, action, target_type, target_id, ip_address, request_id, metadata)
       SELECT CAST(:au_actor AS uuid), CAST(:au_action AS text), :au_target_type, :au_target_id,
              CAST(:au_ip AS inet), :au_request, CAST(:au_metadata AS jsonb)
       WHERE CAST(:au_action AS text) IS NOT NULL"""
_ANSWER = """UPDATE idempotency_keys SET response = CAST(:an_response AS jsonb)
       WHERE user_id = CAST(:an_user AS uuid) AND key = CAST(:an_key AS text)"""
_NEW = """INSERT INTO ledger_transactions
           (id, reference, kind, status, currency, amount, fee, converted_currency,
            converted_amount, exchange_rate, description, failure_reason, initiator_id,
            source_wallet_id, target_wallet_id, metadata, created_at, completed_at)
         VALUES (:tx, :reference, :kind, :status, :currency, :amount, :fee, :converted_currency,
                 :converted_amount, :exchange_rate, :description, :failure_reason, :initiator,
                 :source, :target, CAST(:metadata AS jsonb), :at, :completed_at)"""
_NEXT = """UPDATE ledger_transactions
         SET status = :status, failure_reason = :failure_reason, completed_at = :completed_at,
             metadata = CAST(:metadata AS jsonb), updated_at = now()
         WHERE id = :tx"""
_BOOK_NEW, _BOOK_NEXT = (
    announced(
        BOOKED_EVENTS,
        booked=_BOOKED,
        transaction=transaction,
        history=_HISTORY,
        entries=_ENTRIES,
        audit=_AUDIT,
        answer=_ANSWER,
    )
    for transaction in (_NEW, _NEXT)
)
# Refusals the booking function raises (SQLSTATE SL001: the domain's code in the message).
_REFUSED, _KEY_TAKEN = "SL001", "SL002"


def _history_params(changes: Sequence[StatusChange]) -> dict[str, Any]:
    return {
        "statuses": [c.status.value for c in changes],
        "reasons": [c.reason for c in changes],
        "ats": [c.at for c in changes],
    }


def _tx(row: Row[Any]) -> Transaction:
    return Transaction(
        id=row.id,
        reference=row.reference,
        kind=TransactionKind(row.kind),
        status=TransactionStatus(row.status),
        currency=CurrencyCode(row.currency),
        amount=row.amount,
        fee=row.fee,
        description=row.description,
        failure_reason=row.failure_reason,
        initiator_id=row.initiator_id,
        source_wallet_id=row.source_wallet_id,
        target_wallet_id=row.target_wallet_id,
        metadata=dict(row.metadata or {}),
        created_at=row.created_at,
        completed_at=row.completed_at,
        converted_currency=CurrencyCode(row.converted_currency) if row.converted_currency else None,
        converted_amount=row.converted_amount,
        exchange_rate=row.exchange_rate,
    )


def booking_statement(booking: Booking) -> tuple[TextClause, dict[str, Any]]:
    """The one statement that books ``booking``, and its parameters (benchmarks run the same
    SQL without the rest of the server)."""
    tx = booking.transaction
    params: dict[str, Any] = {
        "tx": tx.id,
        "status": tx.status.value,
        "failure_reason": tx.failure_reason,
        "completed_at": tx.completed_at,
        "metadata": json.dumps(tx.metadata),
        **_accounts_params(booking),
        **_audit_params(booking.audit),
        **_answer_params(booking.answer),
        **transaction_event(tx),
    }
    if booking.change is None:
        statement = _BOOK_NEW
        params |= {
            "reference": tx.reference,
            "kind": tx.kind.value,
            "currency": tx.currency.value,
            "amount": tx.amount,
            "fee": tx.fee,
            "converted_currency": tx.converted_currency.value if tx.converted_currency else None,
            "converted_amount": tx.converted_amount,
            "exchange_rate": tx.exchange_rate,
            "description": tx.description,
            "initiator": tx.initiator_id,
            "source": tx.source_wallet_id,
            "target": tx.target_wallet_id,
            "at": tx.created_at,
            **_history_params(tx.history),
        }
    else:
        statement = _BOOK_NEXT
        params |= {"at": booking.change.at, **_history_params([booking.change])}
    return statement, params


def _accounts_params(booking: Booking) -> dict[str, Any]:
    # Arrays: the SQL text (and its prepared statement) is the same for any number of legs.
    cap, claim = booking.cap, booking.answer.claim if booking.answer else None
    return {
        "p_wallets": [p.wallet_id for p in booking.postings],
        "p_currencies": [p.currency.value for p in booking.postings],
        "p_amounts": [p.amount for p in booking.postings],
        "p_releases": [p.release_hold for p in booking.postings],
        "h_wallets": [wallet for wallet, _ in booking.holds],
        "h_amounts": [amount for _, amount in booking.holds],
        "senders": list(booking.senders),
        "cap_user": cap.user_id if cap else None,
        "cap_currency": cap.currency.value if cap else None,
        "cap_day": cap.day if cap else None,
        "cap_limit": cap.limit if cap else None,
        "cap_amount": cap.amount if cap else None,
        "claim_user": claim.user_id if claim else None,
        "claim_key": claim.key if claim else None,
        "claim_operation": claim.operation if claim else None,
        "claim_hash": claim.request_hash if claim else None,
        "claim_response": json.dumps(booking.answer.response) if claim and booking.answer else None,
    }


def _audit_params(event: AuditEvent | None) -> dict[str, Any]:
    return {
        "au_actor": event.actor_id if event else None,
        "au_action": event.action if event else None,
        "au_target_type": event.target_type if event else None,
        "au_target_id": str(event.target_id) if event and event.target_id is not None else None,
        "au_ip": event.ip_address if event else None,
        "au_request": event.request_id if event else None,
        "au_metadata": json.dumps(event.metadata, default=str) if event else None,
    }


def _answer_params(answer: Answer | None) -> dict[str, Any]:
    stored_here = answer is not None and answer.claim is None
    return {
        "an_user": answer.user_id if answer and stored_here else None,
        "an_key": answer.key if answer and stored_here else None,
        "an_response": json.dumps(answer.response) if answer and stored_here else None,
    }


# What a user sent or withdrew in a currency on a day (``stacklo_book_accounts`` reads the same
# row, locked, for the daily cap).
_OUTGOING = select(func.coalesce(func.sum(daily_outgoing.c.amount), literal_column("0"))).where(
    daily_outgoing.c.user_id == bindparam("user_id"),
    daily_outgoing.c.currency == bindparam("currency"),
    daily_outgoing.c.day == bindparam("day"),
)


# Accounts named by (kind, merchant, currency, shard), for ``Ledger._account``: per engine (a
# process may talk to several databases, as the tests do).
_AccountKey = tuple[str, uuid.UUID | None, str, int]
_known_accounts: WeakKeyDictionary[Engine, dict[_AccountKey, uuid.UUID]] = WeakKeyDictionary()


def forget_account_ids() -> None:
    """Forget every remembered account id: only for whoever deletes accounts, which the ledger
    never does (a test that empties the tables does)."""
    _known_accounts.clear()


_SETTLED = (wallets.c.created_at < func.now()).label("settled")
_PLATFORM_ACCOUNT = select(wallets.c.id, _SETTLED).where(
    wallets.c.kind == bindparam("kind"),
    wallets.c.currency == bindparam("currency"),
    wallets.c.shard == bindparam("shard"),
)
_MERCHANT_PAYABLE = select(wallets.c.id, _SETTLED).where(
    wallets.c.kind == AccountKind.MERCHANT_PAYABLE.value,
    wallets.c.merchant_id == bindparam("merchant"),
    wallets.c.currency == bindparam("currency"),
    wallets.c.shard == bindparam("shard"),
)


class LedgerEntryRow:
    """An entry as a statement shows it."""

    __slots__ = (
        "amount",
        "balance_after",
        "created_at",
        "currency",
        "id",
        "transaction_id",
        "wallet_id",
    )

    def __init__(self, row: Row[Any]):
        self.id: int = row.id
        self.transaction_id: uuid.UUID = row.transaction_id
        self.wallet_id: uuid.UUID = row.wallet_id
        self.currency = CurrencyCode(row.currency)
        self.amount: Decimal = row.amount
        self.balance_after: Decimal = row.balance_after
        self.created_at: datetime = row.created_at


class Ledger:
    """Every change to a transaction's status or a wallet's balance also writes its outbox
    event here, in the same statement sequence: no use case can forget to announce one."""

    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    # ---------------------------------------------------------------- accounts

    async def lock_wallets(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Wallet]:
        """SELECT ... FOR UPDATE in id order, so two opposite transfers cannot deadlock."""
        rows = await self._conn.execute(
            select(wallets)
            .where(wallets.c.id.in_(sorted(set(ids))))
            .order_by(wallets.c.id)
            .with_for_update()
        )
        return {row.id: wallet_of_row(row) for row in rows}

    async def platform_account(
        self, kind: AccountKind, currency: CurrencyCode, shard: int | None = None
    ) -> uuid.UUID:
        """The id of one shard of a platform account, created on first use."""
        shard = random.randrange(PLATFORM_SHARDS) if shard is None else shard  # noqa: S311 - load spreading
        return await self._account(
            (kind.value, None, currency.value, shard),
            dict(kind=kind.value, currency=currency.value, shard=shard),
        )

    async def merchant_payable(
        self, merchant_id: uuid.UUID, currency: CurrencyCode, shard: int | None = None
    ) -> uuid.UUID:
        """One shard of the merchant's payable, created on first use: a busy merchant's sales
        spread over ``MERCHANT_SHARDS`` rows instead of queueing on one."""
        shard = random.randrange(MERCHANT_SHARDS) if shard is None else shard  # noqa: S311 - load spreading
        kind = AccountKind.MERCHANT_PAYABLE.value
        return await self._account(
            (kind, merchant_id, currency.value, shard),
            dict(kind=kind, merchant_id=merchant_id, currency=currency.value, shard=shard),
        )

    async def _account(self, key: _AccountKey, values: dict[str, Any]) -> uuid.UUID:
        """An account's id by what names it, made on first use. An account never changes its
        id, so one committed before this transaction began is remembered for the process (its
        row is older than ``now()``); one made in this transaction is not, as it may roll back."""
        known = _known_accounts.setdefault(self._conn.sync_engine, {})
        found = known.get(key)
        if found is not None:
            return found
        kind, merchant, currency, shard = key
        statement = _PLATFORM_ACCOUNT if merchant is None else _MERCHANT_PAYABLE
        params = {"kind": kind, "merchant": merchant, "currency": currency, "shard": shard}
        row = (await self._conn.execute(statement, params)).first()
        if row is not None:
            if row.settled:
                known[key] = row.id
            return row.id  # type: ignore[no-any-return]
        await self._conn.execute(
            insert(wallets).values(id=uuid.uuid4(), **values).on_conflict_do_nothing()
        )
        return await self._account(key, values)

    async def merchant_payables(
        self, merchant_id: uuid.UUID, currency: CurrencyCode
    ) -> list[uuid.UUID]:
        rows = await self._conn.execute(
            select(wallets.c.id)
            .where(
                wallets.c.kind == AccountKind.MERCHANT_PAYABLE.value,
                wallets.c.merchant_id == merchant_id,
                wallets.c.currency == currency.value,
            )
            .order_by(wallets.c.id)
        )
        found = [r[0] for r in rows]
        return found or [await self.merchant_payable(merchant_id, currency, 0)]

    async def book(self, booking: Booking) -> None:
        """Lock, check and save the accounts, and write the transaction, its history, entries,
        events, audit record and idempotency answer: one statement (see ``_BOOKED``)."""
        statement, params = booking_statement(booking)
        try:
            await self._conn.execute(statement, params)
        except DBAPIError as e:
            state = getattr(e.orig, "sqlstate", None)
            if state == _KEY_TAKEN:
                raise KeyTaken() from None
            if state == _REFUSED:
                cause = e.orig.__cause__ if e.orig is not None else None
                raise Refused(
                    getattr(cause, "message", ""), getattr(cause, "detail", None)
                ) from None
            raise

    async def annotate(self, tx: Transaction) -> None:
        """Metadata only (a provider's transfer code, a review note): no status change, so
        nothing a subscriber sees and no event."""
        await self._conn.execute(
            update(ledger_transactions)
            .where(ledger_transactions.c.id == tx.id)
            .values(metadata=tx.metadata, updated_at=func.now())
        )

    async def get(self, tx_id: uuid.UUID) -> Transaction | None:
        row = (
            await self._conn.execute(
                select(ledger_transactions).where(ledger_transactions.c.id == tx_id)
            )
        ).first()
        return _tx(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Transaction]:
        if not ids:
            return []
        rows = await self._conn.execute(
            select(ledger_transactions).where(ledger_transactions.c.id.in_(list(ids)))
        )
        return [_tx(r) for r in rows]

    async def by_reference(self, reference: str, *, for_update: bool = False) -> Transaction | None:
        query = select(ledger_transactions).where(ledger_transactions.c.reference == reference)
        if for_update:
            query = query.with_for_update()
        row = (await self._conn.execute(query)).first()
        return _tx(row) if row else None

    async def in_flight(
        self, kind: TransactionKind, before: datetime, limit: int
    ) -> list[Transaction]:
        t = ledger_transactions.c
        rows = await self._conn.execute(
            select(ledger_transactions)
            .where(
                t.kind == kind.value,
                t.status == TransactionStatus.PROCESSING.value,
                t.created_at < before,
                ~t.metadata.has_key("review"),  # a person's to settle
            )
            .order_by(t.updated_at, t.id)
            .limit(limit)
        )
        return [_tx(r) for r in rows]

    async def history(self, tx_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[StatusChange]]:
        out: dict[uuid.UUID, list[StatusChange]] = {t: [] for t in tx_ids}
        if tx_ids:
            rows = await self._conn.execute(
                select(transaction_status_changes)
                .where(transaction_status_changes.c.transaction_id.in_(list(tx_ids)))
                .order_by(transaction_status_changes.c.id)
            )
            for r in rows:
                out[r.transaction_id].append(
                    StatusChange(TransactionStatus(r.status), r.at, r.reason)
                )
        return out

    async def entries_of(
        self, tx_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[LedgerEntryRow]]:
        out: dict[uuid.UUID, list[LedgerEntryRow]] = {t: [] for t in tx_ids}
        if tx_ids:
            rows = await self._conn.execute(
                select(ledger_entries)
                .where(ledger_entries.c.transaction_id.in_(list(tx_ids)))
                .order_by(ledger_entries.c.id)
            )
            for r in rows:
                out[r.transaction_id].append(LedgerEntryRow(r))
        return out

    async def entry(self, entry_id: int) -> LedgerEntryRow | None:
        row = (
            await self._conn.execute(select(ledger_entries).where(ledger_entries.c.id == entry_id))
        ).first()
        return LedgerEntryRow(row) if row else None

    async def statement(
        self, wallet_id: uuid.UUID, *, first: int, after: int | None
    ) -> Page[LedgerEntryRow]:
        query = (
            select(ledger_entries)
            .where(ledger_entries.c.wallet_id == wallet_id)
            .order_by(ledger_entries.c.id.desc())
            .limit(first + 1)
        )
        if after is not None:
            query = query.where(ledger_entries.c.id < after)
        rows = (await self._conn.execute(query)).all()
        return Page([LedgerEntryRow(r) for r in rows[:first]], len(rows) > first)

    async def for_user(
        self,
        user_id: uuid.UUID,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        kinds: Sequence[TransactionKind] | None = None,
        statuses: Sequence[TransactionStatus] | None = None,
        currency: CurrencyCode | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Page[Transaction]:
        """Transactions touching any of the user's wallets, newest first (keyset)."""
        own = select(wallets.c.id).where(wallets.c.user_id == user_id).scalar_subquery()
        t = ledger_transactions
        conditions = [or_(t.c.source_wallet_id.in_(own), t.c.target_wallet_id.in_(own))]
        if after is not None:
            conditions.append(tuple_(t.c.created_at, t.c.id) < tuple_(*after))
        if kinds:
            conditions.append(t.c.kind.in_([k.value for k in kinds]))
        if statuses:
            conditions.append(t.c.status.in_([s.value for s in statuses]))
        if currency is not None:
            conditions.append(t.c.currency == currency.value)
        if created_after is not None:
            conditions.append(t.c.created_at >= created_after)
        if created_before is not None:
            conditions.append(t.c.created_at < created_before)
        rows = (
            await self._conn.execute(
                select(t)
                .where(and_(*conditions))
                .order_by(t.c.created_at.desc(), t.c.id.desc())
                .limit(first + 1)
            )
        ).all()
        return Page([_tx(r) for r in rows[:first]], len(rows) > first)

    async def outgoing_on(self, user_id: uuid.UUID, currency: CurrencyCode, day: date) -> Decimal:
        total = (
            await self._conn.execute(
                _OUTGOING, {"user_id": user_id, "day": day, "currency": currency.value}
            )
        ).scalar_one()
        return Decimal(total)

    # ------------------------------------------------------------ webhooks

    async def record_provider_event(
        self,
        provider: str,
        kind: str,
        reference: str,
        provider_id: str,
        payload: dict[str, Any],
        outcome: str,
    ) -> bool:
        """False when this event was already applied (a replay)."""
        result = await self._conn.execute(
            insert(provider_events)
            .values(
                provider=provider,
                kind=kind,
                reference=reference,
                provider_id=provider_id,
                payload=payload,
                outcome=outcome,
            )
            .on_conflict_do_nothing()
            .returning(provider_events.c.id)
        )
        return result.first() is not None


_KEY = select(
    idempotency_keys.c.operation, idempotency_keys.c.request_hash, idempotency_keys.c.response
).where(
    idempotency_keys.c.user_id == bindparam("user_id"), idempotency_keys.c.key == bindparam("key")
)


_CLAIM = (
    insert(idempotency_keys)
    .values(
        user_id=bindparam("user_id"),
        key=bindparam("key"),
        operation=bindparam("operation"),
        request_hash=bindparam("hash"),
    )
    .on_conflict_do_nothing()
    .returning(idempotency_keys.c.key)
)


class Idempotency:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def claim(
        self, user_id: uuid.UUID, key: str, operation: str, request_hash: str
    ) -> tuple[str, str, dict[str, Any]] | None:
        """Claim ``key`` in this transaction, or return the first use's (operation, hash, response).

        A concurrent claimer of the same key blocks on the primary key until the first
        transaction ends: then it sees the committed row, or claims the key if that rolled back.
        """
        inserted = await self._conn.execute(
            _CLAIM, {"user_id": user_id, "key": key, "operation": operation, "hash": request_hash}
        )
        if inserted.first() is not None:
            return None
        found = await self.find(user_id, key)
        assert found is not None, "a conflicting claim is committed when the insert returns"
        return found

    async def find(self, user_id: uuid.UUID, key: str) -> tuple[str, str, dict[str, Any]] | None:
        row = (await self._conn.execute(_KEY, {"user_id": user_id, "key": key})).first()
        return (row.operation, row.request_hash, dict(row.response)) if row else None

    async def save(self, user_id: uuid.UUID, key: str, response: dict[str, Any]) -> None:
        await self._conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
            .values(response=response)
        )
