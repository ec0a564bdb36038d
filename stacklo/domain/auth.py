"""Sign-up, log-in, refresh rotation with reuse detection, log-out, password change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from stacklo.domain.errors import Conflict, DomainError, ErrorCode
from stacklo.domain.models import (
    IssuedSession,
    KycStatus,
    RefreshToken,
    RequestMeta,
    Role,
    Session,
    User,
    audit,
)
from stacklo.domain.money import CurrencyCode
from stacklo.domain.ports import Clock, PasswordHasher, TokenIssuer, UnitOfWork, UnitOfWorkFactory
from stacklo.domain.validation import (
    MAX_NAME,
    MAX_PASSWORD,
    check_password,
    clean_text,
    normalize_email,
    normalize_phone,
)
from stacklo.domain.wallets import add_wallet

_INVALID_CREDENTIALS = DomainError(ErrorCode.INVALID_CREDENTIALS, "Email or password is incorrect.")
_INVALID_TOKEN = DomainError(
    ErrorCode.INVALID_TOKEN, "The token is invalid or has expired.", ("input", "refreshToken")
)


@dataclass(frozen=True, slots=True)
class SignUp:
    email: str
    password: str
    full_name: str
    phone_number: str | None
    home_currency: CurrencyCode
    meta: RequestMeta
    roles: tuple[Role, ...] = (Role.CUSTOMER,)


@dataclass(frozen=True, slots=True)
class LogIn:
    email: str
    password: str
    meta: RequestMeta


@dataclass(frozen=True, slots=True)
class RefreshSession:
    refresh_token: str
    meta: RequestMeta


@dataclass(frozen=True, slots=True)
class LogOut:
    refresh_token: str
    meta: RequestMeta


@dataclass(frozen=True, slots=True)
class ChangePassword:
    """``session_id``: the session that asks, which keeps going (all others end)."""

    user_id: uuid.UUID
    session_id: uuid.UUID | None
    current: str
    new: str
    meta: RequestMeta


class AuthService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        hasher: PasswordHasher,
        tokens: TokenIssuer,
        clock: Clock,
        refresh_ttl: timedelta,
    ):
        self._uow = uow
        self._hasher = hasher
        self._tokens = tokens
        self._clock = clock
        self._refresh_ttl = refresh_ttl
        self._dummy_hash: str | None = None

    async def sign_up(self, data: SignUp) -> IssuedSession:
        meta = data.meta
        email = normalize_email(data.email)
        full_name = clean_text(data.full_name, ("input", "fullName"), max_len=MAX_NAME)
        phone = normalize_phone(data.phone_number) if data.phone_number else None
        check_password(data.password, email, ("input", "password"))
        now = self._clock()
        user = User(
            id=uuid.uuid4(),
            email=email,
            full_name=full_name,
            phone_number=phone,
            password_hash=await self._hasher.hash(data.password),
            roles=list(data.roles),
            kyc_status=KycStatus.PENDING,
            created_at=now,
        )
        async with self._uow() as uow:
            try:
                await uow.users.add(user)
            except Conflict as c:
                if c.what == "email":
                    raise DomainError(
                        ErrorCode.EMAIL_TAKEN,
                        "An account with this email already exists.",
                        ("input", "email"),
                    ) from None
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    "This phone number is already registered.",
                    ("input", "phoneNumber"),
                ) from None
            await uow.audit.record(
                audit(
                    "user.signed_up",
                    meta,
                    actor_id=user.id,
                    target_type="User",
                    target_id=user.id,
                    roles=[r.value for r in user.roles],
                )
            )
            await add_wallet(uow, user.id, data.home_currency, now, meta)
            issued = await self._start_session(uow, user, now, meta.user_agent)
            await uow.commit()
        return issued

    async def log_in(self, cmd: LogIn) -> IssuedSession:
        email, password, meta = cmd.email, cmd.password, cmd.meta
        if len(password) > MAX_PASSWORD:
            raise _INVALID_CREDENTIALS
        try:
            address = normalize_email(email)
        except DomainError:
            address = None
        now = self._clock()
        async with self._uow() as uow:
            user = await uow.users.get_by_email(address) if address else None
            if user is None:
                # Same work as a real check, so timing does not tell which emails exist.
                await self._hasher.verify(await self._dummy(), password)
                ok = False
            else:
                ok = await self._hasher.verify(user.password_hash, password)
            if not ok:
                await uow.audit.record(
                    audit(
                        "user.login_failed",
                        meta,
                        actor_id=user.id if user else None,
                        target_type="User",
                        target_id=user.id if user else None,
                        reason="wrong_password" if user else "unknown_email",
                    )
                )
                await uow.commit()
                raise _INVALID_CREDENTIALS
            assert user is not None
            if self._hasher.needs_rehash(user.password_hash):
                user.password_hash = await self._hasher.hash(password)
                await uow.users.set_password_hash(user.id, user.password_hash)
            sessions, known = await uow.sessions.devices_seen(user.id, meta.user_agent)
            issued = await self._start_session(uow, user, now, meta.user_agent)
            if sessions and not known:  # not their first sign-in, and not from here before
                await uow.outbox.notify(
                    user.id,
                    "session.new_device",
                    {
                        "device": meta.user_agent or "an unknown device",
                        "ip": meta.ip_address or "an unknown address",
                        "at": now.strftime("%Y-%m-%d %H:%M UTC"),
                    },
                )
            await uow.audit.record(
                audit(
                    "user.logged_in", meta, actor_id=user.id, target_type="User", target_id=user.id
                )
            )
            await uow.commit()
        return issued

    async def refresh(self, cmd: RefreshSession) -> IssuedSession:
        refresh_token, meta = cmd.refresh_token, cmd.meta
        now = self._clock()
        async with self._uow() as uow:
            found = await uow.sessions.token_for_update(self._tokens.hash_refresh(refresh_token))
            if found is None:
                raise _INVALID_TOKEN
            token, session = found
            if session.revoked_at is not None:
                raise _INVALID_TOKEN
            if token.used_at is not None:
                # A rotated token came back: someone holds a copy. Kill the whole family.
                await uow.sessions.revoke(session.id, now, "refresh_reuse_detected")
                await uow.audit.record(
                    audit(
                        "session.refresh_reuse_detected",
                        meta,
                        actor_id=session.user_id,
                        target_type="Session",
                        target_id=session.id,
                    )
                )
                await uow.commit()
                raise _INVALID_TOKEN
            if token.expires_at <= now or session.expires_at <= now:
                raise _INVALID_TOKEN
            user = await uow.users.get(session.user_id)
            if user is None:
                raise _INVALID_TOKEN
            await uow.sessions.mark_used(token.id, now)
            issued = await self._rotate(uow, user, session, now)
            await uow.commit()
        return issued

    async def log_out(self, cmd: LogOut) -> None:
        refresh_token, meta = cmd.refresh_token, cmd.meta
        now = self._clock()
        async with self._uow() as uow:
            found = await uow.sessions.token_for_update(self._tokens.hash_refresh(refresh_token))
            if found is None or found[1].revoked_at is not None:
                raise _INVALID_TOKEN
            _, session = found
            await uow.sessions.revoke(session.id, now, "logged_out")
            await uow.audit.record(
                audit(
                    "session.logged_out",
                    meta,
                    actor_id=session.user_id,
                    target_type="Session",
                    target_id=session.id,
                )
            )
            await uow.commit()

    async def change_password(self, cmd: ChangePassword) -> None:
        user_id, session_id, current, new, meta = (
            cmd.user_id,
            cmd.session_id,
            cmd.current,
            cmd.new,
            cmd.meta,
        )
        now = self._clock()
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
            if user is None:
                raise _INVALID_CREDENTIALS
            if len(current) > MAX_PASSWORD or not await self._hasher.verify(
                user.password_hash, current
            ):
                raise DomainError(
                    ErrorCode.INVALID_CREDENTIALS,
                    "Current password is incorrect.",
                    ("input", "currentPassword"),
                )
            check_password(new, user.email, ("input", "newPassword"))
            if new == current:
                raise DomainError(
                    ErrorCode.WEAK_PASSWORD,
                    "New password must differ from the current one.",
                    ("input", "newPassword"),
                )
            await uow.users.set_password_hash(user.id, await self._hasher.hash(new))
            revoked = await uow.sessions.revoke_others(user.id, session_id, now, "password_changed")
            await uow.audit.record(
                audit(
                    "password.changed",
                    meta,
                    actor_id=user.id,
                    target_type="User",
                    target_id=user.id,
                    revoked_sessions=revoked,
                )
            )
            await uow.commit()

    async def _start_session(
        self, uow: UnitOfWork, user: User, now: datetime, user_agent: str | None = None
    ) -> IssuedSession:
        session = Session(
            id=uuid.uuid4(),
            user_id=user.id,
            created_at=now,
            expires_at=now + self._refresh_ttl,
            user_agent=user_agent,
        )
        raw, token = self._new_token(session.id, now, session.expires_at)
        await uow.sessions.add(session, token)
        access, expires = self._tokens.issue_access(user.id, session.id, now)
        return IssuedSession(access, raw, expires, user)

    async def _rotate(
        self, uow: UnitOfWork, user: User, session: Session, now: datetime
    ) -> IssuedSession:
        raw, token = self._new_token(session.id, now, session.expires_at)
        await uow.sessions.add_token(token)
        access, expires = self._tokens.issue_access(user.id, session.id, now)
        return IssuedSession(access, raw, expires, user)

    def _new_token(
        self, session_id: uuid.UUID, now: datetime, expires: datetime
    ) -> tuple[str, RefreshToken]:
        raw, digest = self._tokens.new_refresh()
        return raw, RefreshToken(
            id=uuid.uuid4(),
            session_id=session_id,
            token_hash=digest,
            issued_at=now,
            expires_at=expires,
        )

    async def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = await self._hasher.hash("not-a-real-password-0")
        return self._dummy_hash
