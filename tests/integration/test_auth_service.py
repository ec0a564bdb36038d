"""The auth use cases against the real database: atomicity, audit, rotation, reuse."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from stacklo.auth.passwords import Argon2Hasher
from stacklo.auth.tokens import Authenticator, JwtTokens
from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.auth import AuthService, ChangePassword, LogIn, LogOut, RefreshSession, SignUp
from stacklo.domain.errors import DomainError, ErrorCode, Unauthenticated
from stacklo.domain.models import RequestMeta
from stacklo.domain.money import CurrencyCode

META = RequestMeta(ip_address="203.0.113.9", request_id="req-1")
PASSWORD = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens() -> JwtTokens:
    return JwtTokens("k" * 48, "HS256", "stacklo", "stacklo-api", timedelta(minutes=15))


@pytest.fixture
def service(uow_factory: SqlUnitOfWorkFactory, clock: Clock, tokens: JwtTokens) -> AuthService:
    return AuthService(uow_factory, Argon2Hasher(1, 1024, 1), tokens, clock, timedelta(days=30))


async def actions(uow_factory: SqlUnitOfWorkFactory) -> list[str]:
    async with uow_factory.engine.connect() as conn:
        rows = await conn.execute(text("SELECT action FROM audit_events ORDER BY id"))
        return [r[0] for r in rows]


def signup(email: str = "ada@example.com", **kw: object) -> SignUp:
    args: dict[str, object] = {
        "email": email,
        "password": PASSWORD,
        "full_name": "Ada Obi",
        "phone_number": None,
        "home_currency": CurrencyCode.USD,
        "meta": META,
    }
    args.update(kw)
    return SignUp(**args)  # type: ignore[arg-type]


async def test_sign_up_opens_wallet_and_audits_in_one_transaction(
    service: AuthService, uow_factory: SqlUnitOfWorkFactory
) -> None:
    issued = await service.sign_up(signup())
    async with uow_factory() as uow:
        wallets = (await uow.wallets.for_users([issued.user.id]))[issued.user.id]
        events = await uow.audit.page(first=10, after=None, action=None, actor_id=issued.user.id)
    assert [w.currency for w in wallets] == [CurrencyCode.USD]
    assert {e.action for e in events.items} == {"user.signed_up", "wallet.opened"}
    assert all(e.ip_address == "203.0.113.9" and e.request_id == "req-1" for e in events.items)
    assert issued.user.password_hash.startswith("$argon2id$")


async def test_failed_sign_up_leaves_nothing(
    service: AuthService, uow_factory: SqlUnitOfWorkFactory
) -> None:
    await service.sign_up(signup())
    with pytest.raises(DomainError) as e:
        await service.sign_up(signup("ADA@example.com"))
    assert e.value.code is ErrorCode.EMAIL_TAKEN
    async with uow_factory.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM users"))).scalar() == 1
        assert (await conn.execute(text("SELECT count(*) FROM wallets"))).scalar() == 1


async def test_unknown_email_and_wrong_password_look_the_same(
    service: AuthService, uow_factory: SqlUnitOfWorkFactory
) -> None:
    await service.sign_up(signup())
    errors = []
    for email, password in (
        ("ada@example.com", "wrong password!"),
        ("nobody@example.com", PASSWORD),
        ("x", PASSWORD),
    ):
        with pytest.raises(DomainError) as e:
            await service.log_in(LogIn(email, password, META))
        errors.append((e.value.code, e.value.message, e.value.field))
    assert len(set(errors)) == 1 and errors[0][0] is ErrorCode.INVALID_CREDENTIALS
    assert (await actions(uow_factory)).count("user.login_failed") == 3


async def test_refresh_rotates_and_reuse_revokes_the_family(
    service: AuthService, uow_factory: SqlUnitOfWorkFactory, tokens: JwtTokens, clock: Clock
) -> None:
    first = await service.sign_up(signup())
    second = await service.refresh(RefreshSession(first.refresh_token, META))
    assert second.refresh_token != first.refresh_token
    third = await service.refresh(RefreshSession(second.refresh_token, META))

    with pytest.raises(DomainError) as e:
        await service.refresh(
            RefreshSession(first.refresh_token, META)
        )  # replayed: someone kept a copy
    assert e.value.code is ErrorCode.INVALID_TOKEN
    assert "session.refresh_reuse_detected" in await actions(uow_factory)
    # The whole family is dead, including the newest token and its access token.
    with pytest.raises(DomainError):
        await service.refresh(RefreshSession(third.refresh_token, META))
    with pytest.raises(Unauthenticated):
        await Authenticator(tokens, uow_factory, clock).authenticate(third.access_token)


async def test_concurrent_refresh_of_one_token_has_one_winner(service: AuthService) -> None:
    issued = await service.sign_up(signup())
    results = await asyncio.gather(
        *(service.refresh(RefreshSession(issued.refresh_token, META)) for _ in range(5)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(
        isinstance(r, DomainError) and r.code is ErrorCode.INVALID_TOKEN
        for r in results
        if r not in winners
    )


async def test_expired_refresh_token_is_invalid(service: AuthService, clock: Clock) -> None:
    issued = await service.sign_up(signup())
    clock.now += timedelta(days=31)
    with pytest.raises(DomainError) as e:
        await service.refresh(RefreshSession(issued.refresh_token, META))
    assert e.value.code is ErrorCode.INVALID_TOKEN


async def test_change_password_revokes_every_other_session(
    service: AuthService, uow_factory: SqlUnitOfWorkFactory, tokens: JwtTokens, clock: Clock
) -> None:
    phone = await service.sign_up(signup())
    laptop = await service.log_in(LogIn("ada@example.com", PASSWORD, META))
    auth = Authenticator(tokens, uow_factory, clock)
    laptop_viewer = await auth.authenticate(laptop.access_token)

    await service.change_password(
        ChangePassword(
            phone.user.id, laptop_viewer.session_id, PASSWORD, "a new long passphrase", META
        )
    )

    assert (await auth.authenticate(laptop.access_token)).user.id == phone.user.id
    with pytest.raises(Unauthenticated):
        await auth.authenticate(phone.access_token)
    with pytest.raises(DomainError):
        await service.refresh(RefreshSession(phone.refresh_token, META))
    with pytest.raises(DomainError):
        await service.log_in(LogIn("ada@example.com", PASSWORD, META))
    await service.log_in(LogIn("ada@example.com", "a new long passphrase", META))
    assert "password.changed" in await actions(uow_factory)


async def test_change_password_checks_current_and_policy(service: AuthService) -> None:
    issued = await service.sign_up(signup())
    for current, new, code in (
        ("wrong password", "another passphrase", ErrorCode.INVALID_CREDENTIALS),
        (PASSWORD, "1234567890123", ErrorCode.WEAK_PASSWORD),
        (PASSWORD, PASSWORD, ErrorCode.WEAK_PASSWORD),
    ):
        with pytest.raises(DomainError) as e:
            await service.change_password(ChangePassword(issued.user.id, None, current, new, META))
        assert e.value.code is code


async def test_log_out_ends_the_session(
    service: AuthService, uow_factory: SqlUnitOfWorkFactory, tokens: JwtTokens, clock: Clock
) -> None:
    issued = await service.sign_up(signup())
    await service.log_out(LogOut(issued.refresh_token, META))
    with pytest.raises(Unauthenticated):
        await Authenticator(tokens, uow_factory, clock).authenticate(issued.access_token)
    with pytest.raises(DomainError):
        await service.log_out(LogOut(issued.refresh_token, META))
    assert "session.logged_out" in await actions(uow_factory)


async def test_stale_password_hashes_are_upgraded_on_log_in(
    uow_factory: SqlUnitOfWorkFactory, tokens: JwtTokens, clock: Clock
) -> None:
    weak = AuthService(uow_factory, Argon2Hasher(1, 1024, 1), tokens, clock, timedelta(days=1))
    stronger = AuthService(uow_factory, Argon2Hasher(2, 2048, 1), tokens, clock, timedelta(days=1))
    issued = await weak.sign_up(signup())
    await stronger.log_in(LogIn("ada@example.com", PASSWORD, META))
    async with uow_factory() as uow:
        user = await uow.users.get(issued.user.id)
    assert user is not None and "m=2048,t=2" in user.password_hash
