"""Sending money to another person: in the same currency, or across currencies at a quote.

No answer tells whether someone has an account or which currencies they hold: everything
about the sender (frozen, daily limit, funds, the quote) is answered before the recipient is
looked up, and by email or phone a recipient is their wallet in the transfer's currency, so
someone without one is NOT_FOUND, word for word as nobody at all. A wallet id is a handle its
owner gave out: its currency is no secret (QUOTE_REQUIRED, or CURRENCY_MISMATCH against a
quote).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.fx import Quote
from stacklo.domain.ledger import (
    KeyTaken,
    Transaction,
    TransactionKind,
    TransactionStatus,
    ensure_can_send,
    transfer_postings,
)
from stacklo.domain.models import AccountKind, RequestMeta, User, Wallet, audit
from stacklo.domain.money import CurrencyCode, Money, parse_amount
from stacklo.domain.movements import Idempotent, Movement, Sender, book
from stacklo.domain.outcomes import (
    Outcome,
    check_key,
    claim_key,
    first_answer,
    replay,
    request_hash,
)
from stacklo.domain.ports import Clock, UnitOfWork, UnitOfWorkFactory
from stacklo.domain.quotes import mark_spent, quote_audit, quote_legs, quoted, spend_quote
from stacklo.domain.spending import DailyLimits
from stacklo.domain.validation import MAX_REASON, clean_text, normalize_email, normalize_phone
from stacklo.domain.wallets import owned_wallet

RECIPIENT_NOT_FOUND = "Recipient not found."
OPERATION = "sendMoney"


@dataclass(frozen=True, slots=True)
class Recipient:
    """Exactly one of the three."""

    email: str | None = None
    phone_number: str | None = None
    wallet: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class SendMoney:
    user: User
    from_wallet: uuid.UUID
    to: Recipient
    amount: Decimal
    idempotency_key: str
    meta: RequestMeta
    note: str | None = None
    quote: uuid.UUID | None = None

    def request(self) -> dict[str, object]:
        """What the idempotency key is bound to."""
        return {
            "from": str(self.from_wallet),
            "to": [self.to.email, self.to.phone_number, str(self.to.wallet)],
            "amount": str(self.amount),
            "note": self.note,
            "quote": str(self.quote) if self.quote else None,
        }


class Transfers:
    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, limits: DailyLimits):
        self._uow = uow
        self._clock = clock
        self._limits = limits

    async def send(self, cmd: SendMoney) -> Outcome:
        if sum(x is not None for x in (cmd.to.email, cmd.to.phone_number, cmd.to.wallet)) != 1:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                "Give exactly one of email, phoneNumber or walletId.",
                ("input", "to"),
            )
        note = (
            clean_text(cmd.note, ("input", "note"), max_len=MAX_REASON, required=False)
            if cmd.note
            else None
        )
        # Without a quote the booking is the only write, and it claims the key itself: no
        # transaction around it, and no look at the key first (a retry finds it taken, or is
        # looked up before a refusal). With a quote, the quote is spent alongside.
        single = cmd.quote is None
        async with self._uow(single_write=single) as uow:
            if single:
                check_key(cmd.idempotency_key)
            else:
                first = await claim_key(
                    uow, cmd.user.id, cmd.idempotency_key, OPERATION, cmd.request()
                )
                if first is not None:
                    return await replay(uow, first)
            try:
                outcome = await self._send(uow, cmd, note)
            except KeyTaken:  # a call with the same key booked first: its answer is ours
                first = await self._first(uow, cmd)
                assert first is not None, "a taken key has its answer"
                return await replay(uow, first)
            except DomainError:
                # A retry gets the first call's answer even where the rules would refuse it
                # now (its money already moved); a refusal is only for a key never answered.
                first = await self._first(uow, cmd) if single else None
                if first is not None:
                    return await replay(uow, first)
                raise
            await uow.commit()
        return outcome

    async def _send(self, uow: UnitOfWork, cmd: SendMoney, note: str | None) -> Outcome:
        now = self._clock()
        source = await owned_wallet(uow, cmd.user, cmd.from_wallet, "fromWalletId")
        amount = Money(parse_amount(cmd.amount, source.currency), source.currency)
        quote = await self._quote(uow, cmd, source, amount, now) if cmd.quote else None
        await self._sender_may_send(uow, cmd.user, source, amount)
        target = await recipient_wallet(
            uow, cmd.to, quote.target.currency if quote else source.currency, quote is not None
        )
        if target.id == source.id:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                "You cannot send money to the same wallet.",
                ("input", "to"),
            )
        movement = await self._movement(uow, cmd, source, target, amount, quote, note or None, now)
        outcome = await book(uow, movement)
        if quote is not None:
            await mark_spent(uow, quote, outcome.transaction, now)
        return outcome

    @staticmethod
    async def _first(uow: UnitOfWork, cmd: SendMoney) -> dict[str, Any] | None:
        """The first call's stored answer under this key (IDEMPOTENCY_KEY_REUSED for another
        request), read once."""
        return await first_answer(uow, cmd.user.id, cmd.idempotency_key, OPERATION, cmd.request())

    @staticmethod
    async def _quote(
        uow: UnitOfWork, cmd: SendMoney, source: Wallet, amount: Money, now: datetime
    ) -> Quote:
        assert cmd.quote is not None
        quote = await spend_quote(uow, cmd.user, cmd.quote, now)
        if quote.source.currency is not source.currency:
            raise DomainError(
                ErrorCode.CURRENCY_MISMATCH,
                f"This quote converts from {quote.source.currency.value}; the wallet "
                f"holds {source.currency.value}.",
                ("input", "fromWalletId"),
            )
        if amount.amount != quote.source.amount:
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                f"amount must be the quote's sourceAmount, {quote.source.amount}.",
                ("input", "amount"),
            )
        return quote

    async def _sender_may_send(
        self, uow: UnitOfWork, user: User, source: Wallet, amount: Money
    ) -> None:
        """The sender's own refusals, read without locks, before the recipient is looked up;
        ``book`` checks the same rules again on the locked rows."""
        ensure_can_send(source)
        await self._limits.check(uow, user, amount)
        if source.available_money.amount < amount.amount:
            raise DomainError(
                ErrorCode.INSUFFICIENT_FUNDS, "Not enough available balance.", ("input", "amount")
            )

    async def _movement(
        self,
        uow: UnitOfWork,
        cmd: SendMoney,
        source: Wallet,
        target: Wallet,
        amount: Money,
        quote: Quote | None,
        note: str | None,
        now: datetime,
    ) -> Movement:
        tx = Transaction.start(
            TransactionKind.TRANSFER,
            amount,
            now,
            status=TransactionStatus.COMPLETED,
            initiator_id=cmd.user.id,
            source_wallet_id=source.id,
            target_wallet_id=target.id,
            description=note,
            **(quoted(quote) if quote else {}),
        )

        return Movement(
            tx,
            postings=(
                await quote_legs(uow, quote, source.id, target.id)
                if quote
                else transfer_postings(source.id, target.id, amount)
            ),
            senders=[Sender(source.id)],
            cap=self._limits.cap(cmd.user, amount),
            audit=audit(
                "transfer.completed",
                cmd.meta,
                actor_id=cmd.user.id,
                target_type="Transaction",
                target_id=tx.reference,
                amount=str(amount.amount),
                currency=amount.currency.value,
                **(quote_audit(quote) if quote else {}),
            ),
            idempotent=Idempotent(
                cmd.user.id,
                cmd.idempotency_key,
                claim=None if quote else (OPERATION, request_hash(OPERATION, cmd.request())),
            ),
        )


async def recipient_wallet(
    uow: UnitOfWork, to: Recipient, code: CurrencyCode, quoted: bool
) -> Wallet:
    """The recipient's wallet in ``code`` (see the module's docstring for who sees what)."""
    not_found = DomainError(ErrorCode.NOT_FOUND, RECIPIENT_NOT_FOUND, ("input", "to"))
    if to.wallet is not None:
        wallet = await uow.wallets.get(to.wallet)
        if wallet is None or wallet.kind is not AccountKind.CUSTOMER:
            raise not_found
        if wallet.currency is not code:
            raise _other_currency(wallet, code, quoted)
        return wallet
    try:
        if to.email is not None:
            found = await uow.users.get_by_email(normalize_email(to.email, ("input", "to")))
        else:
            assert to.phone_number is not None
            found = await uow.users.get_by_phone(normalize_phone(to.phone_number, ("input", "to")))
    except DomainError:
        raise not_found from None
    wallet = await uow.wallets.for_user_currency(found.id, code) if found else None
    if wallet is None:
        raise not_found
    return wallet


def _other_currency(wallet: Wallet, code: CurrencyCode, quoted: bool) -> DomainError:
    if quoted:
        return DomainError(
            ErrorCode.CURRENCY_MISMATCH,
            f"This quote converts into {code.value}; the recipient's wallet holds "
            f"{wallet.currency.value}.",
            ("input", "to"),
        )
    return DomainError(
        ErrorCode.QUOTE_REQUIRED,
        f"The recipient's wallet is in {wallet.currency.value}: create a quote to convert.",
        ("input", "quoteId"),
    )
