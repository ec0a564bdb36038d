"""Repositories and constraints against the real PostgreSQL."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.errors import Conflict
from stacklo.domain.models import AccountKind, AuditEvent, KycStatus, Role, User, Wallet
from stacklo.domain.money import CurrencyCode


def a_user(email: str | None = None, phone: str | None = None) -> User:
    return User(
        id=uuid.uuid4(),
        email=email or f"{uuid.uuid4().hex[:10]}@example.com",
        full_name="Ada Obi",
        phone_number=phone,
        password_hash="h",
        roles=[Role.CUSTOMER],
        kyc_status=KycStatus.PENDING,
        created_at=datetime.now(UTC),
    )


async def test_duplicate_email_and_phone_are_conflicts(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        await uow.users.add(a_user("ada@example.com", "+2348000000001"))
        with pytest.raises(Conflict) as e:
            await uow.users.add(a_user("ada@example.com"))
        assert e.value.what == "email"
        with pytest.raises(Conflict) as e:
            await uow.users.add(a_user(phone="+2348000000001"))
        assert e.value.what == "phone_number"
        # The failed inserts were savepoints: the first user is still there to commit.
        await uow.commit()
    async with uow_factory() as uow:
        assert (await uow.users.get_by_email("ada@example.com")) is not None


async def test_nothing_is_kept_without_commit(uow_factory: SqlUnitOfWorkFactory) -> None:
    user = a_user()
    async with uow_factory() as uow:
        await uow.users.add(user)
    async with uow_factory() as uow:
        assert await uow.users.get(user.id) is None


async def test_one_wallet_per_currency(uow_factory: SqlUnitOfWorkFactory) -> None:
    user = a_user()
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.wallets.add(Wallet.open(user.id, CurrencyCode.NGN, datetime.now(UTC)))
        await uow.wallets.add(Wallet.open(user.id, CurrencyCode.BTC, datetime.now(UTC)))
        with pytest.raises(Conflict):
            await uow.wallets.add(Wallet.open(user.id, CurrencyCode.NGN, datetime.now(UTC)))
        await uow.commit()
    async with uow_factory() as uow:
        found = (await uow.wallets.for_users([user.id]))[user.id]
    assert [w.currency for w in found] == [CurrencyCode.NGN, CurrencyCode.BTC]
    assert all(w.balance == Decimal(0) for w in found)


@pytest.mark.parametrize(
    "assignment",
    ["balance = -0.01", "held = -1", "held = balance + 1", "currency = 'XYZ'", "user_id = NULL"],
)
async def test_check_constraints_back_the_domain_rules(
    uow_factory: SqlUnitOfWorkFactory, assignment: str
) -> None:
    user = a_user()
    wallet = Wallet.open(user.id, CurrencyCode.USD, datetime.now(UTC))
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.wallets.add(wallet)
        await uow.commit()
    engine = uow_factory.engine
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(
                text(f"UPDATE wallets SET {assignment} WHERE id = :id"), {"id": wallet.id}
            )


async def test_platform_accounts_may_go_negative_but_customers_may_not(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    insert = text(
        "INSERT INTO wallets (id, user_id, kind, currency, balance) VALUES (:id, :user, :kind, 'NGN', -500)"
    )
    async with uow_factory.engine.begin() as conn:
        await conn.execute(insert, {"id": uuid.uuid4(), "user": None, "kind": "PROVIDER_CLEARING"})
        platform = (
            await conn.execute(text("SELECT count(*) FROM wallets WHERE balance < 0"))
        ).scalar()
    assert platform == 1
    user = a_user()
    async with uow_factory() as uow:
        await uow.users.add(user)
        await uow.commit()
    with pytest.raises(IntegrityError):
        async with uow_factory.engine.begin() as conn:
            await conn.execute(insert, {"id": uuid.uuid4(), "user": user.id, "kind": "CUSTOMER"})


async def test_users_page_by_keyset_with_filters(uow_factory: SqlUnitOfWorkFactory) -> None:
    async with uow_factory() as uow:
        for i in range(5):
            await uow.users.add(a_user(f"page{i}@example.com"))
        await uow.users.add(a_user("someone@else.org"))
        await uow.commit()
    async with uow_factory() as uow:
        first = await uow.users.page(first=2, after=None, search="page", kyc_status=None)
        last = first.items[-1]
        second = await uow.users.page(
            first=10, after=(last.created_at, last.id), search="page", kyc_status=None
        )
        none = await uow.users.page(first=10, after=None, search="%", kyc_status=None)
        verified = await uow.users.page(
            first=10, after=None, search=None, kyc_status=KycStatus.VERIFIED
        )
    assert first.has_next and len(first.items) == 2
    assert not second.has_next and len(second.items) == 3
    assert {u.email for u in first.items + second.items} == {
        f"page{i}@example.com" for i in range(5)
    }
    assert none.items == []  # a literal %, not a wildcard
    assert verified.items == []


async def test_audit_events_page_newest_first(uow_factory: SqlUnitOfWorkFactory) -> None:
    user = a_user()
    async with uow_factory() as uow:
        await uow.users.add(user)
        for action in ("a.one", "a.two", "a.one"):
            await uow.audit.record(
                AuditEvent(action, user.id, "User", str(user.id), {"k": 1}, "10.0.0.1", "rid")
            )
        await uow.commit()
    async with uow_factory() as uow:
        page = await uow.audit.page(first=10, after=None, action="a.one", actor_id=user.id)
        assert [e.action for e in page.items] == ["a.one", "a.one"]
        assert page.items[0].id > page.items[1].id  # type: ignore[operator]
        assert page.items[0].ip_address == "10.0.0.1" and page.items[0].metadata == {"k": 1}
        older = await uow.audit.page(first=10, after=page.items[0].id, action=None, actor_id=None)
        assert len(older.items) == 2


async def test_an_account_made_in_a_rolled_back_transaction_is_not_remembered(
    uow_factory: SqlUnitOfWorkFactory,
) -> None:
    """Account ids are remembered per process, but only once committed: an id handed out by a
    transaction that rolled back would name no account."""
    async with uow_factory() as uow:
        lost = await uow.ledger.platform_account(AccountKind.FEES, CurrencyCode.EUR, shard=5)
        assert await uow.ledger.platform_account(AccountKind.FEES, CurrencyCode.EUR, 5) == lost
    async with uow_factory() as uow:
        made = await uow.ledger.platform_account(AccountKind.FEES, CurrencyCode.EUR, shard=5)
        await uow.commit()
    assert made != lost
    async with uow_factory() as uow:
        again = await uow.ledger.platform_account(AccountKind.FEES, CurrencyCode.EUR, shard=5)
        assert again == made
        assert [w.id for w in await uow.wallets.get_many([made, lost])] == [made]
