"""Converting between a user's own wallets at a locked quote: fiat exchange, crypto buy,
crypto sell. The target wallet is opened in the same transaction if the user has none."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from stacklo.domain.errors import Conflict, DomainError, ErrorCode
from stacklo.domain.fx import Quote
from stacklo.domain.ledger import Transaction, TransactionStatus
from stacklo.domain.models import RequestMeta, User, Wallet, audit
from stacklo.domain.money import CurrencyCode
from stacklo.domain.movements import Idempotent, Movement, Sender, book
from stacklo.domain.outcomes import Outcome, claim_key, replay
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from stacklo.domain.quotes import mark_spent, quote_audit, quote_legs, quoted, spend_quote
from stacklo.domain.wallets import add_wallet


@dataclass(frozen=True, slots=True)
class Convert:
    user: User
    quote: uuid.UUID
    idempotency_key: str
    meta: RequestMeta


class Conversions:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock):
        self._uow = uow
        self._clock = clock

    async def convert(self, cmd: Convert) -> Outcome:
        user = cmd.user
        async with self._uow() as uow:
            payload = {"quote": str(cmd.quote)}
            first = await claim_key(uow, user.id, cmd.idempotency_key, "convert", payload)
            if first is not None:
                return await replay(uow, first)
            now = self._clock()
            quote = await spend_quote(uow, user, cmd.quote, now)
            source = await self._source_wallet(uow, user, quote)
            target = await _target_wallet(uow, user, quote.target.currency, now, cmd.meta)
            outcome = await book(uow, await self._movement(uow, cmd, quote, source, target, now))
            await mark_spent(uow, quote, outcome.transaction, now)
            await uow.commit()
        return outcome

    @staticmethod
    async def _source_wallet(uow: UnitOfWork, user: User, quote: Quote) -> Wallet:
        source = await uow.wallets.for_user_currency(user.id, quote.source.currency)
        if source is None:
            raise DomainError(
                ErrorCode.INSUFFICIENT_FUNDS,
                f"You have no {quote.source.currency.value} wallet to convert from.",
                ("input", "quoteId"),
            )
        return source

    @staticmethod
    async def _movement(
        uow: UnitOfWork, cmd: Convert, quote: Quote, source: Wallet, target: Wallet, now: datetime
    ) -> Movement:
        tx = Transaction.start(
            quote.kind.transaction_kind,
            quote.source,
            now,
            status=TransactionStatus.COMPLETED,
            initiator_id=cmd.user.id,
            source_wallet_id=source.id,
            target_wallet_id=target.id,
            description=f"{quote.source.currency.value} to {quote.target.currency.value}",
            **quoted(quote),
        )
        return Movement(
            tx,
            postings=await quote_legs(uow, quote, source.id, target.id),
            senders=[Sender(source.id, ("input", "quoteId"))],
            audit=audit(
                "conversion.completed",
                cmd.meta,
                actor_id=cmd.user.id,
                target_type="Transaction",
                target_id=tx.reference,
                **quote_audit(quote),
            ),
            idempotent=Idempotent(cmd.user.id, cmd.idempotency_key),
        )


async def _target_wallet(
    uow: UnitOfWork, user: User, code: CurrencyCode, now: datetime, meta: RequestMeta
) -> Wallet:
    """The user's wallet in ``code``, opened in this transaction if missing."""
    found = await uow.wallets.for_user_currency(user.id, code)
    if found is not None:
        return found
    try:
        return await add_wallet(uow, user.id, code, now, meta, reason="conversion")
    except Conflict:  # opened concurrently: that one is as good
        again = await uow.wallets.for_user_currency(user.id, code)
        assert again is not None
        return again
