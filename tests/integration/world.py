"""The use cases wired as the app wires them, on the test database, with a clock the test
moves: use-case tests run without HTTP against real PostgreSQL through the unit of work.

The payment provider is the sandbox (real code; no network), or a stand-in for Paystack
refusing payouts where a test needs the provider down.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from stacklo.data.fx import MemoryRateCache
from stacklo.data.ledger_check import verify
from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.borrower import CreditProfile
from stacklo.domain.checkouts import Checkouts
from stacklo.domain.collection import Collection
from stacklo.domain.conversions import Conversions
from stacklo.domain.credit import CreditStatus, load_scorecard
from stacklo.domain.credit_applications import CreditApplications
from stacklo.domain.funding import Funding, StartDeposit
from stacklo.domain.fx import (
    DEFAULT_FEE_BPS,
    DEFAULT_MAX_AMOUNT,
    DEFAULT_MIN_AMOUNT,
    Pair,
    Pricing,
    Snapshot,
)
from stacklo.domain.ledger import Transaction
from stacklo.domain.merchants import Merchants
from stacklo.domain.models import KycStatus, RequestMeta, Role, User, Wallet
from stacklo.domain.money import CurrencyCode, Money, to_minor_units
from stacklo.domain.plans import LendingTerms, Plans
from stacklo.domain.ports import (
    BankAccount,
    PaymentProvider,
    ProviderEvent,
    ProviderEventKind,
    ProviderUnavailable,
)
from stacklo.domain.quotes import Quotes
from stacklo.domain.rates import Rates
from stacklo.domain.settlement import Settlement
from stacklo.domain.spending import DailyLimits
from stacklo.domain.transfers import Transfers
from stacklo.domain.wallets import Wallets, add_wallet
from stacklo.integrations.sandbox import SandboxProvider

NGN, USD, BTC = CurrencyCode.NGN, CurrencyCode.USD, CurrencyCode.BTC
T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
META = RequestMeta(ip_address="127.0.0.1", request_id="test")
BANK = BankAccount("058", "0123456789", "Ada Obi")


class Clock:
    """Time stands still until the test moves it."""

    def __init__(self, now: datetime = T0):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def pricing() -> Pricing:
    return Pricing(
        spread_bps_fiat=Decimal(50),
        spread_bps_crypto=Decimal(100),
        fee_bps=DEFAULT_FEE_BPS,
        min_amount=DEFAULT_MIN_AMOUNT,
        max_amount=DEFAULT_MAX_AMOUNT,
        max_age=timedelta(seconds=60),
        ttl=timedelta(seconds=30),
    )


def snapshot(at: datetime) -> Snapshot:
    return Snapshot({Pair(USD, NGN): Decimal(1550), Pair(BTC, USD): Decimal(95000)}, at, "test")


class PayoutsDown(SandboxProvider):
    """Paystack with its transfer API unreachable (deposits still work)."""

    async def payout(self, reference: str, amount: Money, account: BankAccount, reason: str) -> str:
        raise ProviderUnavailable("transfer API down")


class World:
    def __init__(
        self,
        uow: SqlUnitOfWorkFactory,
        provider: PaymentProvider | None = None,
        daily: dict[CurrencyCode, Decimal] | None = None,
    ):
        self.uow = uow
        self.clock = Clock()
        self.provider = provider or SandboxProvider("sandbox-test-secret")
        limits = DailyLimits(daily if daily is not None else {USD: Decimal(50)}, self.clock)
        self.rates = Rates(uow, pricing(), MemoryRateCache(ttl_seconds=3600))
        self.quotes = Quotes(uow, self.clock, self.rates)
        self.conversions = Conversions(uow, self.clock)
        self.transfers = Transfers(uow, self.clock, limits)
        self.funding = Funding(uow, self.clock, self.provider, limits)
        self.wallets = Wallets(uow, self.clock)
        self.merchants = Merchants(uow, self.clock)
        self.lending = LendingTerms(
            fee_bps=Decimal(500),
            min_amount={NGN: Decimal(1000), USD: Decimal(10)},
            max_amount={NGN: Decimal(5_000_000), USD: Decimal(5000)},
            late_fee_flat={NGN: Decimal(500), USD: Decimal(1)},
        )
        self.plans = Plans(uow, self.clock, self.lending)
        self.collection = Collection(uow, self.clock, self.lending)
        self.credit = CreditApplications(uow, self.clock, load_scorecard(), timedelta(days=30))
        self.checkouts = Checkouts(
            uow, self.clock, fee_bps=Decimal(150), ttl=timedelta(seconds=1800), plans=self.plans
        )
        self.settlement = Settlement(uow, self.clock, timedelta(days=1))

    async def person(
        self,
        currency: CurrencyCode = NGN,
        kyc: KycStatus = KycStatus.VERIFIED,
        roles: tuple[Role, ...] = (Role.CUSTOMER,),
    ) -> tuple[User, Wallet]:
        user = User(
            id=uuid.uuid4(),
            email=f"{uuid.uuid4().hex[:10]}@example.com",
            full_name="Ada Obi",
            phone_number=None,
            password_hash="h",
            roles=list(roles),
            kyc_status=kyc,
            created_at=self.clock(),
        )
        async with self.uow() as uow:
            await uow.users.add(user)
            wallet = await add_wallet(uow, user.id, currency, self.clock(), META)
            await uow.commit()
        return user, wallet

    async def deposit(self, user: User, wallet: Wallet, amount: str) -> Transaction:
        """Started by the user, then the provider's word that it was paid."""
        started = await self.funding.start_deposit(
            StartDeposit(user, wallet.id, Decimal(amount), uuid.uuid4().hex, META)
        )
        tx = started.transaction
        outcome = await self.funding.apply_provider_event(
            self.provider_event(ProviderEventKind.DEPOSIT_SUCCEEDED, tx), META
        )
        assert outcome == "credited", outcome
        return tx

    @staticmethod
    def provider_event(
        kind: ProviderEventKind, tx: Transaction, **changes: object
    ) -> ProviderEvent:
        values: dict[str, object] = {
            "name": kind.value.lower(),
            "kind": kind,
            "reference": tx.reference,
            "amount_minor": to_minor_units(tx.money),
            "currency": tx.currency.value,
            "provider_id": uuid.uuid4().hex[:12],
            "raw": {},
        }
        values.update(changes)
        return ProviderEvent(**values)  # type: ignore[arg-type]

    async def balance(self, wallet: Wallet) -> tuple[Decimal, Decimal]:
        """(balance, held) as committed."""
        async with self.uow(read_only=True) as uow:
            found = await uow.wallets.get(wallet.id)
        assert found is not None
        return found.balance, found.held

    async def rates_now(self) -> None:
        await self.rates.record(snapshot(self.clock()))

    async def approve_credit(self, user: User, limit: str, currency: CurrencyCode = NGN) -> None:
        """Set-up: an APPROVED profile with ``limit``, as a decision would leave it."""
        async with self.uow() as uow:
            await uow.credit.save_profile(
                CreditProfile(
                    user.id, CreditStatus.APPROVED, currency, Decimal(limit), 700, [], self.clock()
                )
            )
            await uow.commit()

    async def verified(self) -> None:
        """`stacklo ledger verify` passes on everything written so far."""
        report = await verify(self.uow.engine)
        assert report.ok, report.violations
