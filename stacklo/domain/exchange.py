"""Rates, locked quotes, conversions between a user's own wallets, and portfolio valuation.

A quote is priced from the latest committed feed reading (``domain/fx.py`` has the rules) and
stored; spending it (``spend_quote``) locks its row first, then the wallets in id order, so
two concurrent executions of one quote serialise and exactly one wins.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from stacklo.domain.errors import Conflict, DomainError, ErrorCode
from stacklo.domain.fx import (
    SUPPORTED_PAIRS,
    ExchangeRate,
    Pair,
    Pricing,
    Quote,
    Snapshot,
    value_in,
)
from stacklo.domain.ledger import (
    Posting,
    Transaction,
    TransactionStatus,
    apply_postings,
    ensure_can_send,
)
from stacklo.domain.models import AccountKind, KycStatus, RequestMeta, User, Wallet, audit
from stacklo.domain.money import MONEY_CONTEXT, CurrencyCode, Money
from stacklo.domain.outcomes import Outcome, claim_key, replay, response_of
from stacklo.domain.ports import Clock, RateCache, UnitOfWork, UnitOfWorkFactory
from stacklo.domain.wallets import add_wallet


def require_kyc_for_crypto(user: User, quote_pair: Pair) -> None:
    if quote_pair.crypto and user.kyc_status is not KycStatus.VERIFIED:
        raise DomainError(
            ErrorCode.KYC_REQUIRED,
            "Buying, selling or sending crypto needs a verified identity.",
        )


async def spend_quote(
    uow: UnitOfWork, user: User, quote_id: uuid.UUID | None, now: datetime
) -> Quote:
    """Lock the viewer's quote and check it can be used now. The caller marks it used in the
    same database transaction (``uow.quotes.mark_used``) once the movement is written."""
    quote = await uow.quotes.get(quote_id, for_update=True) if quote_id else None
    if quote is None or quote.user_id != user.id:
        raise DomainError(ErrorCode.NOT_FOUND, "Quote not found.", ("input", "quoteId"))
    quote.check_usable(now)
    require_kyc_for_crypto(user, quote.pair)
    return quote


async def quote_legs(
    uow: UnitOfWork, quote: Quote, source: uuid.UUID, target: uuid.UUID
) -> list[Posting]:
    """The quote's linked legs between two wallets, through the fee and FX liquidity accounts."""
    s, t = quote.source.currency, quote.target.currency
    return quote.conversion_postings(
        source,
        target,
        await uow.ledger.platform_account(AccountKind.FEES, s),
        await uow.ledger.platform_account(AccountKind.FX_LIQUIDITY, s),
        await uow.ledger.platform_account(AccountKind.FX_LIQUIDITY, t),
    )


def quoted(quote: Quote) -> dict[str, Any]:
    """What a transaction priced by ``quote`` records (``Transaction.start`` fields)."""
    return {
        "fee": quote.fee.amount,
        "converted_currency": quote.target.currency,
        "converted_amount": quote.target.amount,
        "exchange_rate": quote.rate,
        "metadata": {"quote_id": str(quote.id), "mid": format(quote.mid, "f")},
    }


def quote_audit(quote: Quote) -> dict[str, str]:
    return {
        "quote_id": str(quote.id),
        "source": f"{quote.source.amount} {quote.source.currency.value}",
        "target": f"{quote.target.amount} {quote.target.currency.value}",
        "fee": f"{quote.fee.amount} {quote.fee.currency.value}",
        "rate": format(quote.rate, "f"),
    }


async def mark_spent(uow: UnitOfWork, quote: Quote, tx: Transaction, now: datetime) -> None:
    """Call after the transaction is written (the quote points at it)."""
    quote.used_at, quote.transaction_id = now, tx.id
    await uow.quotes.mark_used(quote)


@dataclass(frozen=True, slots=True)
class Holding:
    wallet: Wallet
    rate: Decimal
    value: Money


@dataclass(frozen=True, slots=True)
class Portfolio:
    total: Money
    holdings: list[Holding]


class Exchange:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, pricing: Pricing, cache: RateCache):
        self._uow = uow
        self._clock = clock
        self.pricing = pricing
        self._cache = cache
        self._tick_cache: OrderedDict[tuple[int, tuple[Pair, ...] | None], list[ExchangeRate]] = (
            OrderedDict()
        )

    # ---------------------------------------------------------------- rates

    async def snapshot(self) -> Snapshot | None:
        """The latest committed reading: the cache, else the rate history."""
        cached = await self._cache.get()
        if cached is not None:
            return cached
        async with self._uow(read_only=True) as uow:
            latest = await uow.rates.latest()
        if latest is not None:
            await self._cache.put(latest)
        return latest

    async def record(self, snapshot: Snapshot) -> None:
        """Keep a feed reading (history + outbox for ``rateUpdated``), then cache it."""
        async with self._uow() as uow:
            await uow.rates.add(snapshot)
            await uow.outbox.rates_ticked(snapshot)
            await uow.commit()
        await self._cache.put(snapshot)

    async def prune_history(self, older_than: datetime) -> int:
        """Drop readings older than the retention window, a batch per transaction."""
        total = 0
        while True:
            async with self._uow() as uow:
                gone = await uow.rates.prune(older_than)
                await uow.commit()
            total += gone
            if not gone:
                return total

    async def rates(self, pairs: Sequence[Pair] | None) -> list[ExchangeRate]:
        for n, pair in enumerate(pairs or ()):
            if not pair.supported:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    f"{pair} is not a supported pair.",
                    ("pairs", str(n)),
                )
        snapshot = await self.snapshot()
        if snapshot is None:
            raise DomainError(
                ErrorCode.PROVIDER_UNAVAILABLE, "No exchange rates yet; try again shortly."
            )
        return self.rates_from(snapshot, pairs)

    def tick_rates(
        self, tick: int, payload: Mapping[str, Any], pairs: Sequence[Pair] | None
    ) -> list[ExchangeRate]:
        """A rate tick's rates for ``pairs``, priced once per tick and pair list however many
        subscribers ask (``tick``: the event's outbox position)."""
        key = (tick, tuple(pairs) if pairs is not None else None)
        found = self._tick_cache.get(key)
        if found is None:
            found = self.rates_from(Snapshot.from_dict(payload), pairs)
            self._tick_cache[key] = found
            while len(self._tick_cache) > 256:
                self._tick_cache.popitem(last=False)
        return found

    def rates_from(self, snapshot: Snapshot, pairs: Sequence[Pair] | None) -> list[ExchangeRate]:
        wanted = list(dict.fromkeys(pairs)) if pairs is not None else SUPPORTED_PAIRS
        return [r for p in wanted if (r := self.pricing.rate(snapshot, p)) is not None]

    # ---------------------------------------------------------------- quotes

    async def create_quote(
        self,
        user: User,
        source: CurrencyCode,
        target: CurrencyCode,
        source_amount: Decimal | None,
        target_amount: Decimal | None,
    ) -> Quote:
        if Pair(source, target).supported:  # an unsupported pair is INVALID_INPUT, below
            require_kyc_for_crypto(user, Pair(source, target))
        quote = self.pricing.quote(
            user.id,
            await self.snapshot(),
            source,
            target,
            source_amount,
            target_amount,
            self._clock(),
        )
        async with self._uow() as uow:
            await uow.quotes.add(quote)
            await uow.commit()
        return quote

    async def quote_for(self, user: User, quote_id: uuid.UUID) -> Quote | None:
        async with self._uow(read_only=True) as uow:
            quote = await uow.quotes.get(quote_id)
        return quote if quote is not None and quote.user_id == user.id else None

    # ---------------------------------------------------------------- convert

    async def convert(
        self, user: User, quote_id: uuid.UUID | None, key: str, raw_id: str, meta: RequestMeta
    ) -> Outcome:
        async with self._uow() as uow:
            first = await claim_key(uow, user.id, key, "convert", {"quote": raw_id})
            if first is not None:
                return await replay(uow, first)
            now = self._clock()
            quote = await spend_quote(uow, user, quote_id, now)
            s, t = quote.source.currency, quote.target.currency
            source = await uow.wallets.for_user_currency(user.id, s)
            if source is None:
                raise DomainError(
                    ErrorCode.INSUFFICIENT_FUNDS,
                    f"You have no {s.value} wallet to convert from.",
                    ("input", "quoteId"),
                )
            target = await self._target_wallet(uow, user, t, now, meta)
            postings = await quote_legs(uow, quote, source.id, target.id)
            locked = await uow.ledger.lock_wallets([p.wallet_id for p in postings])
            ensure_can_send(locked[source.id], ("input", "quoteId"))
            tx = Transaction.start(
                quote.kind.transaction_kind,
                quote.source,
                now,
                status=TransactionStatus.COMPLETED,
                initiator_id=user.id,
                source_wallet_id=source.id,
                target_wallet_id=target.id,
                description=f"{s.value} to {t.value}",
                **quoted(quote),
            )
            entries = apply_postings(locked, postings)
            await uow.ledger.save_wallets(list(locked.values()))
            await uow.ledger.add(tx, entries)
            await mark_spent(uow, quote, tx, now)
            await uow.audit.record(
                audit(
                    "conversion.completed",
                    meta,
                    actor_id=user.id,
                    target_type="Transaction",
                    target_id=tx.reference,
                    **quote_audit(quote),
                )
            )
            outcome = Outcome(tx)
            await uow.idempotency.save(user.id, key, response_of(outcome))
            await uow.commit()
        return outcome

    @staticmethod
    async def _target_wallet(
        uow: UnitOfWork, user: User, code: CurrencyCode, now: datetime, meta: RequestMeta
    ) -> Wallet:
        """The viewer's wallet in ``code``, opened in this transaction if missing."""
        found = await uow.wallets.for_user_currency(user.id, code)
        if found is not None:
            return found
        try:
            return await add_wallet(uow, user.id, code, now, meta, reason="conversion")
        except Conflict:  # opened concurrently: that one is as good
            again = await uow.wallets.for_user_currency(user.id, code)
            assert again is not None
            return again

    # ---------------------------------------------------------------- portfolio

    async def portfolio(self, wallets: Sequence[Wallet], valuation: CurrencyCode) -> Portfolio:
        snapshot = await self.snapshot()
        if snapshot is None:
            raise DomainError(
                ErrorCode.PROVIDER_UNAVAILABLE, "No exchange rates yet; try again shortly."
            )
        holdings = []
        total = Decimal(0)
        for wallet in wallets:
            rate, value = value_in(wallet.balance_money, snapshot, valuation)
            holdings.append(Holding(wallet, rate, value))
            total = MONEY_CONTEXT.add(total, value.amount)
        return Portfolio(Money(total, valuation).quantized(), holdings)
