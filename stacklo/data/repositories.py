"""Repositories over one connection. Each maps rows onto the domain's dataclasses."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, func, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from stacklo.data.outbox import (
    SESSIONS_ENDED_EVENTS,
    USER_CHANGED_EVENT,
    WALLET_EVENTS,
    announced,
    wallet_events,
)
from stacklo.data.tables import audit_events, auth_sessions, refresh_tokens, users, wallets
from stacklo.domain.errors import Conflict
from stacklo.domain.models import (
    AccountKind,
    AuditEvent,
    KycStatus,
    Page,
    RefreshToken,
    Role,
    Session,
    User,
    Wallet,
    WalletStatus,
)
from stacklo.domain.money import CurrencyCode


def _conflict_on(error: IntegrityError) -> str | None:
    name = getattr(getattr(error.orig, "__cause__", None), "constraint_name", None) or str(
        error.orig
    )
    for key, what in (
        ("uq_users_email", "email"),
        ("uq_users_phone_number", "phone_number"),
        ("uq_wallets_user_currency", "wallet"),
    ):
        if key in name:
            return what
    return None


def _user(row: Row[Any]) -> User:
    return User(
        id=row.id,
        email=row.email,
        full_name=row.full_name,
        phone_number=row.phone_number,
        password_hash=row.password_hash,
        roles=[Role(r) for r in row.roles],
        kyc_status=KycStatus(row.kyc_status),
        created_at=row.created_at,
        kyc_may_resubmit=row.kyc_may_resubmit,
    )


def wallet_of_row(row: Row[Any]) -> Wallet:
    return Wallet(
        id=row.id,
        user_id=row.user_id,
        currency=CurrencyCode(row.currency),
        balance=row.balance,
        held=row.held,
        status=WalletStatus(row.status),
        created_at=row.created_at,
        kind=AccountKind(row.kind),
        merchant_id=row.merchant_id,
    )


# What a signed-in viewer is made of changes with an event, so every process forgets it.
_SET_KYC = announced(
    USER_CHANGED_EVENT,
    changed="""UPDATE users SET kyc_status = :status, kyc_may_resubmit = :may_resubmit,
                  updated_at = now() WHERE id = :id RETURNING id""",
)
_SET_ROLES = announced(
    USER_CHANGED_EVENT,
    changed="""UPDATE users SET roles = CAST(:roles AS varchar[]), updated_at = now()
               WHERE id = :id RETURNING id""",
)


class Changed:
    """Who a unit of work changed that is remembered elsewhere (signed-in viewers): told to
    ``SqlUnitOfWorkFactory.after_commit`` once the change is committed."""

    def __init__(self) -> None:
        self.sessions: set[uuid.UUID] = set()
        self.users: set[uuid.UUID] = set()


class Users:
    def __init__(self, conn: AsyncConnection, changed: Changed | None = None):
        self._conn = conn
        self._changed = changed or Changed()

    async def add(self, user: User) -> None:
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    users.insert().values(
                        id=user.id,
                        email=user.email,
                        full_name=user.full_name,
                        phone_number=user.phone_number,
                        password_hash=user.password_hash,
                        roles=[r.value for r in user.roles],
                        kyc_status=user.kyc_status.value,
                        created_at=user.created_at,
                    )
                )
        except IntegrityError as e:
            what = _conflict_on(e)
            if what is None:
                raise
            raise Conflict(what) from None

    async def get(self, user_id: uuid.UUID, lock: bool = False) -> User | None:
        query = select(users).where(users.c.id == user_id)
        row = (await self._conn.execute(query.with_for_update() if lock else query)).first()
        return _user(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[User]:
        if not ids:
            return []
        rows = await self._conn.execute(select(users).where(users.c.id.in_(list(ids))))
        return [_user(r) for r in rows]

    async def get_by_email(self, email: str) -> User | None:
        row = (await self._conn.execute(select(users).where(users.c.email == email))).first()
        return _user(row) if row else None

    async def get_by_phone(self, phone_number: str) -> User | None:
        row = (
            await self._conn.execute(select(users).where(users.c.phone_number == phone_number))
        ).first()
        return _user(row) if row else None

    async def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        self._changed.users.add(user_id)
        await self._conn.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, updated_at=func.now())
        )

    async def set_kyc_status(
        self, user_id: uuid.UUID, status: KycStatus, may_resubmit: bool = True
    ) -> None:
        self._changed.users.add(user_id)
        await self._conn.execute(
            _SET_KYC, {"id": user_id, "status": status.value, "may_resubmit": may_resubmit}
        )

    async def set_roles(self, user_id: uuid.UUID, roles: Sequence[Role]) -> None:
        self._changed.users.add(user_id)
        await self._conn.execute(_SET_ROLES, {"id": user_id, "roles": [r.value for r in roles]})

    async def page(
        self,
        *,
        first: int,
        after: tuple[datetime, uuid.UUID] | None,
        search: str | None,
        kyc_status: KycStatus | None,
    ) -> Page[User]:
        query = (
            select(users).order_by(users.c.created_at.desc(), users.c.id.desc()).limit(first + 1)
        )
        if after is not None:
            query = query.where(tuple_(users.c.created_at, users.c.id) < tuple_(*after))
        if search:
            pattern = (
                "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            # ILIKE '%...%' uses the trigram indexes (migration 0009) where pg_trgm exists.
            query = query.where(
                or_(
                    users.c.email.ilike(pattern, escape="\\"),
                    users.c.full_name.ilike(pattern, escape="\\"),
                    users.c.phone_number.ilike(pattern, escape="\\"),
                )
            )
        if kyc_status is not None:
            query = query.where(users.c.kyc_status == kyc_status.value)
        rows = (await self._conn.execute(query)).all()
        return Page([_user(r) for r in rows[:first]], len(rows) > first)


# Revoke one session (:one) or every live session of :user but :keep, announced in the same
# statement, so every server process closes the sockets those sessions opened.
_REVOKE = announced(
    SESSIONS_ENDED_EVENTS,
    revoked="""UPDATE auth_sessions SET revoked_at = :at, revoked_reason = :ev_reason
          WHERE revoked_at IS NULL
            AND (id = CAST(:one AS uuid)
                 OR (user_id = CAST(:user AS uuid) AND id IS DISTINCT FROM CAST(:keep AS uuid)))
          RETURNING id, user_id""",
)
_ADD_WALLET = announced(
    WALLET_EVENTS,
    added="""INSERT INTO wallets (id, user_id, kind, currency, balance, held, status, created_at)
         VALUES (:id, :user_id, :kind, :currency, :balance, :held, :status, :created_at)""",
)
_SET_WALLET_STATUS = announced(
    WALLET_EVENTS,
    changed="UPDATE wallets SET status = :status, updated_at = now() WHERE id = :id",
)


class Sessions:
    def __init__(self, conn: AsyncConnection, changed: Changed | None = None):
        self._conn = conn
        self._changed = changed or Changed()

    async def add(self, session: Session, token: RefreshToken) -> None:
        await self._conn.execute(
            auth_sessions.insert().values(
                id=session.id,
                user_id=session.user_id,
                created_at=session.created_at,
                expires_at=session.expires_at,
                user_agent=session.user_agent,
            )
        )
        await self.add_token(token)

    async def devices_seen(self, user_id: uuid.UUID, user_agent: str | None) -> tuple[int, bool]:
        """How many sessions the user ever had, and whether one was from this device."""
        row = (
            await self._conn.execute(
                select(
                    func.count(),
                    func.count().filter(auth_sessions.c.user_agent == user_agent),
                ).where(auth_sessions.c.user_id == user_id)
            )
        ).one()
        return int(row[0]), bool(row[1])

    async def add_token(self, token: RefreshToken) -> None:
        await self._conn.execute(
            refresh_tokens.insert().values(
                id=token.id,
                session_id=token.session_id,
                token_hash=token.token_hash,
                issued_at=token.issued_at,
                expires_at=token.expires_at,
            )
        )

    async def token_for_update(self, token_hash: str) -> tuple[RefreshToken, Session] | None:
        # Lock both rows: two refreshes of one family serialise, and the loser re-reads the
        # token after the winner commits, so it sees the rotation and is treated as reuse.
        query = (
            select(
                refresh_tokens,
                auth_sessions.c.user_id,
                auth_sessions.c.created_at.label("s_created"),
                auth_sessions.c.expires_at.label("s_expires"),
                auth_sessions.c.revoked_at,
                auth_sessions.c.revoked_reason,
            )
            .join(auth_sessions, auth_sessions.c.id == refresh_tokens.c.session_id)
            .where(refresh_tokens.c.token_hash == token_hash)
            .with_for_update(of=[refresh_tokens, auth_sessions])
        )
        row = (await self._conn.execute(query)).first()
        if row is None:
            return None
        token = RefreshToken(
            row.id, row.session_id, row.token_hash, row.issued_at, row.expires_at, row.used_at
        )
        session = Session(
            row.session_id,
            row.user_id,
            row.s_created,
            row.s_expires,
            row.revoked_at,
            row.revoked_reason,
        )
        return token, session

    async def mark_used(self, token_id: uuid.UUID, at: datetime) -> None:
        await self._conn.execute(
            update(refresh_tokens).where(refresh_tokens.c.id == token_id).values(used_at=at)
        )

    async def revoke(self, session_id: uuid.UUID, at: datetime, reason: str) -> bool:
        self._changed.sessions.add(session_id)
        result = await self._conn.execute(
            _REVOKE, {"one": session_id, "user": None, "keep": None, "at": at, "ev_reason": reason}
        )
        return bool(sum(result.scalars()))

    async def revoke_others(
        self, user_id: uuid.UUID, keep: uuid.UUID | None, at: datetime, reason: str
    ) -> int:
        self._changed.users.add(user_id)
        result = await self._conn.execute(
            _REVOKE, {"one": None, "user": user_id, "keep": keep, "at": at, "ev_reason": reason}
        )
        return int(sum(result.scalars()))

    async def ended(self, session_ids: Sequence[uuid.UUID], now: datetime) -> set[uuid.UUID]:
        """Which of these sessions are revoked, expired or gone."""
        if not session_ids:
            return set()
        live = (
            await self._conn.execute(
                select(auth_sessions.c.id).where(
                    auth_sessions.c.id.in_(list(session_ids)),
                    auth_sessions.c.revoked_at.is_(None),
                    auth_sessions.c.expires_at > now,
                )
            )
        ).scalars()
        return set(session_ids) - set(live)

    async def active_viewer(
        self, user_id: uuid.UUID, session_id: uuid.UUID, now: datetime
    ) -> User | None:
        row = (
            await self._conn.execute(
                _ACTIVE_VIEWER, {"user_id": user_id, "session_id": session_id, "now": now}
            )
        ).first()
        return _user(row) if row else None


# Built once: statements every request runs cost only their execution, not their building.
_ACTIVE_VIEWER = (
    select(users)
    .join(auth_sessions, auth_sessions.c.user_id == users.c.id)
    .where(
        users.c.id == bindparam("user_id"),
        auth_sessions.c.id == bindparam("session_id"),
        auth_sessions.c.revoked_at.is_(None),
        auth_sessions.c.expires_at > bindparam("now"),
    )
)
_WALLET = select(wallets).where(wallets.c.id == bindparam("id"))
_WALLET_OF = select(wallets).where(
    wallets.c.user_id == bindparam("user_id"),
    wallets.c.currency == bindparam("currency"),
    wallets.c.kind == AccountKind.CUSTOMER.value,
)


class Wallets:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def add(self, wallet: Wallet) -> None:
        """The wallet and its event; a savepoint, so a Conflict leaves the caller's work."""
        try:
            async with self._conn.begin_nested():
                await self._conn.execute(
                    _ADD_WALLET,
                    {
                        "id": wallet.id,
                        "user_id": wallet.user_id,
                        "kind": wallet.kind.value,
                        "currency": wallet.currency.value,
                        "balance": wallet.balance,
                        "held": wallet.held,
                        "status": wallet.status.value,
                        "created_at": wallet.created_at,
                        **wallet_events([wallet]),
                    },
                )
        except IntegrityError as e:
            if _conflict_on(e) == "wallet":
                raise Conflict("wallet") from None
            raise

    async def get(self, wallet_id: uuid.UUID) -> Wallet | None:
        row = (await self._conn.execute(_WALLET, {"id": wallet_id})).first()
        return wallet_of_row(row) if row else None

    async def get_many(self, ids: Sequence[uuid.UUID]) -> list[Wallet]:
        if not ids:
            return []
        return [
            wallet_of_row(r)
            for r in await self._conn.execute(select(wallets).where(wallets.c.id.in_(list(ids))))
        ]

    async def set_status(self, wallet: Wallet) -> None:
        """The (locked) wallet's new status, with its event."""
        await self._conn.execute(
            _SET_WALLET_STATUS,
            {"id": wallet.id, "status": wallet.status.value, **wallet_events([wallet])},
        )

    async def for_users(self, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Wallet]]:
        out: dict[uuid.UUID, list[Wallet]] = {u: [] for u in user_ids}
        if not user_ids:
            return out
        rows = await self._conn.execute(
            select(wallets)
            .where(
                wallets.c.user_id.in_(list(user_ids)), wallets.c.kind == AccountKind.CUSTOMER.value
            )
            .order_by(wallets.c.created_at, wallets.c.id)
        )
        for row in rows:
            out[row.user_id].append(wallet_of_row(row))
        return out

    async def for_user_currency(self, user_id: uuid.UUID, currency: CurrencyCode) -> Wallet | None:
        row = (
            await self._conn.execute(_WALLET_OF, {"user_id": user_id, "currency": currency.value})
        ).first()
        return wallet_of_row(row) if row else None


def _event(row: Row[Any]) -> AuditEvent:
    return AuditEvent(
        id=row.id,
        action=row.action,
        actor_id=row.actor_id,
        target_type=row.target_type,
        target_id=row.target_id,
        metadata=row.metadata,
        ip_address=str(row.ip_address) if row.ip_address is not None else None,
        request_id=row.request_id,
        created_at=row.created_at,
    )


class Audit:
    def __init__(self, conn: AsyncConnection):
        self._conn = conn

    async def record(self, event: AuditEvent) -> None:
        await self._conn.execute(
            audit_events.insert().values(
                actor_id=event.actor_id,
                action=event.action,
                target_type=event.target_type,
                target_id=event.target_id,
                ip_address=event.ip_address,
                request_id=event.request_id,
                metadata=event.metadata,
            )
        )

    async def get(self, event_id: int) -> AuditEvent | None:
        row = (
            await self._conn.execute(select(audit_events).where(audit_events.c.id == event_id))
        ).first()
        return _event(row) if row else None

    async def page(
        self, *, first: int, after: int | None, action: str | None, actor_id: uuid.UUID | None
    ) -> Page[AuditEvent]:
        conditions = []
        if after is not None:
            conditions.append(audit_events.c.id < after)
        if action:
            conditions.append(audit_events.c.action == action)
        if actor_id is not None:
            conditions.append(audit_events.c.actor_id == actor_id)
        query = select(audit_events).order_by(audit_events.c.id.desc()).limit(first + 1)
        if conditions:
            query = query.where(and_(*conditions))
        rows = (await self._conn.execute(query)).all()
        return Page([_event(r) for r in rows[:first]], len(rows) > first)
