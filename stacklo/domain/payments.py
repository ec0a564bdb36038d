"""Money movement use cases: P2P transfers, deposits, withdrawals, provider webhooks, freezes.

Each opens one unit of work, takes its idempotency key in the same database transaction as
the movement, and commits once. Calls to the payment provider that start a deposit happen
inside the transaction (nothing is written if the provider says no); the payout call happens
after the hold is committed, and its failure releases the hold in a second transaction.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.exchange import mark_spent, quote_audit, quote_legs, quoted, spend_quote
from stacklo.domain.ledger import (
    Posting,
    Transaction,
    TransactionKind,
    TransactionStatus,
    apply_postings,
    ensure_can_send,
    hold,
    release,
    transfer_postings,
)
from stacklo.domain.models import (
    AccountKind,
    KycStatus,
    RequestMeta,
    User,
    Wallet,
    WalletStatus,
    audit,
)
from stacklo.domain.money import (
    CURRENCIES,
    MONEY_CONTEXT,
    CurrencyCode,
    CurrencyKind,
    Money,
    parse_amount,
    to_minor_units,
)
from stacklo.domain.outcomes import Outcome, claim_key, replay, response_of
from stacklo.domain.ports import (
    BankAccount,
    Clock,
    PaymentProvider,
    ProviderEvent,
    ProviderRejected,
    ProviderUnavailable,
    UnitOfWork,
    UnitOfWorkFactory,
)
from stacklo.domain.validation import MAX_REASON, clean_text, normalize_email, normalize_phone


@dataclass(frozen=True, slots=True)
class Limits:
    """Daily send + withdraw limits per currency for users whose KYC is not VERIFIED."""

    unverified_daily: Mapping[CurrencyCode, Decimal]

    def daily_limit(self, kyc: KycStatus, code: CurrencyCode) -> Decimal | None:
        return None if kyc is KycStatus.VERIFIED else self.unverified_daily.get(code)


DEFAULT_UNVERIFIED_DAILY = {
    CurrencyCode.NGN: Decimal("500000"),
    CurrencyCode.USD: Decimal("1000"),
    CurrencyCode.GBP: Decimal("800"),
    CurrencyCode.EUR: Decimal("900"),
    CurrencyCode.BTC: Decimal("0.02"),
    CurrencyCode.ETH: Decimal("0.3"),
    CurrencyCode.USDT: Decimal("1000"),
}


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str | None = None
    phone_number: str | None = None
    wallet_id: uuid.UUID | None = None
    # A wallet id that was not even a well-formed id: still NOT_FOUND, never a parse error.
    malformed_wallet_id: bool = False


class Payments:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        provider: PaymentProvider,
        limits: Limits,
    ):
        self._uow = uow
        self._clock = clock
        self._provider = provider
        self._limits = limits

    # ---------------------------------------------------------------- helpers

    @staticmethod
    async def _own_wallet(
        uow: UnitOfWork, user: User, wallet_id: uuid.UUID | None, field: str
    ) -> Wallet:
        wallet = await uow.wallets.get(wallet_id) if wallet_id else None
        if wallet is None or wallet.user_id != user.id:
            raise DomainError(ErrorCode.NOT_FOUND, "Wallet not found.", ("input", field))
        return wallet

    async def _check_limit(self, uow: UnitOfWork, user: User, amount: Money) -> None:
        """Called with the source wallet locked, so a user's sends in a currency serialise."""
        limit = self._limits.daily_limit(user.kyc_status, amount.currency)
        if limit is None:
            return
        now = self._clock()
        midnight = datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)
        used = await uow.ledger.outgoing_since(user.id, amount.currency, midnight)
        if used + amount.amount > limit:
            left = Money(max(limit - used, Decimal(0)), amount.currency).quantized().amount
            raise DomainError(
                ErrorCode.LIMIT_EXCEEDED,
                f"Unverified accounts may send or withdraw up to {limit} {amount.currency.value} "
                f"a day; {left} left today. Verify your identity to lift "
                "the limit.",
                ("input", "amount"),
            )

    # ---------------------------------------------------------------- sendMoney

    async def send_money(
        self,
        user: User,
        from_wallet_id: uuid.UUID | None,
        to: Recipient,
        raw_amount: Decimal,
        key: str,
        *,
        note: str | None,
        quote_id: str | None,
        meta: RequestMeta,
        quote_uuid: uuid.UUID | None = None,
    ) -> Outcome:
        """P2P transfer; across currencies at a locked quote (``quote_id`` as the client sent
        it, ``quote_uuid`` decoded from it, None when it was not a quote id)."""
        payload = {
            "from": str(from_wallet_id),
            "to": [to.email, to.phone_number, str(to.wallet_id)],
            "amount": str(raw_amount),
            "note": note,
            "quote": quote_id,
        }
        if (
            sum(x is not None for x in (to.email, to.phone_number, to.wallet_id))
            + to.malformed_wallet_id
            != 1
        ):
            raise DomainError(
                ErrorCode.INVALID_INPUT,
                "Give exactly one of email, phoneNumber or walletId.",
                ("input", "to"),
            )
        description = (
            clean_text(note, ("input", "note"), max_len=MAX_REASON, required=False) or None
            if note
            else None
        )
        async with self._uow() as uow:
            if (first := await claim_key(uow, user.id, key, "sendMoney", payload)) is not None:
                return await replay(uow, first)
            source = await self._own_wallet(uow, user, from_wallet_id, "fromWalletId")
            amount = Money(parse_amount(raw_amount, source.currency), source.currency)
            now = self._clock()
            quote = None
            if quote_id is not None:
                quote = await spend_quote(uow, user, quote_uuid, now)
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
            # Everything about the sender is answered before anything about the recipient,
            # so no refusal differs between a recipient who exists and one who does not.
            await self._sender_may_send(uow, user, source, amount)
            wanted = quote.target.currency if quote else source.currency
            target = await self._recipient_wallet(uow, to, wanted, quoted=quote is not None)
            if target.id == source.id:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    "You cannot send money to the same wallet.",
                    ("input", "to"),
                )
            postings = (
                transfer_postings(source.id, target.id, amount)
                if quote is None
                else await quote_legs(uow, quote, source.id, target.id)
            )
            locked = await uow.ledger.lock_wallets([p.wallet_id for p in postings])
            ensure_can_send(locked[source.id])
            await self._check_limit(uow, user, amount)
            tx = Transaction.start(
                TransactionKind.TRANSFER,
                amount,
                now,
                status=TransactionStatus.COMPLETED,
                initiator_id=user.id,
                source_wallet_id=source.id,
                target_wallet_id=target.id,
                description=description,
                **(quoted(quote) if quote else {}),
            )
            entries = apply_postings(locked, postings)
            await uow.ledger.save_wallets(list(locked.values()))
            await uow.ledger.add(tx, entries)
            if quote is not None:
                await mark_spent(uow, quote, tx, now)
            await uow.audit.record(
                audit(
                    "transfer.completed",
                    meta,
                    actor_id=user.id,
                    target_type="Transaction",
                    target_id=tx.reference,
                    amount=str(amount.amount),
                    currency=amount.currency.value,
                    **(quote_audit(quote) if quote else {}),
                )
            )
            outcome = Outcome(tx)
            await uow.idempotency.save(user.id, key, response_of(outcome))
            await uow.commit()
        return outcome

    async def _sender_may_send(
        self, uow: UnitOfWork, user: User, source: Wallet, amount: Money
    ) -> None:
        """The sender's own refusals (frozen, daily limit, funds), read without locks; the
        same rules run again on the locked rows before anything is written."""
        ensure_can_send(source)
        await self._check_limit(uow, user, amount)
        if source.available_money.amount < amount.amount:
            raise DomainError(
                ErrorCode.INSUFFICIENT_FUNDS, "Not enough available balance.", ("input", "amount")
            )

    async def _recipient_wallet(
        self, uow: UnitOfWork, to: Recipient, code: CurrencyCode, *, quoted: bool
    ) -> Wallet:
        """The recipient's wallet in ``code``.

        By email or phone: their wallet in that currency, else NOT_FOUND, exactly as for
        nobody at all, so the answer reveals neither who has an account nor which currencies
        they hold. By wallet id (a handle its owner gave out): NOT_FOUND if there is no such
        customer wallet; in another currency, QUOTE_REQUIRED (or CURRENCY_MISMATCH against a
        quote).
        """
        not_found = DomainError(ErrorCode.NOT_FOUND, "Recipient not found.", ("input", "to"))
        if to.wallet_id is not None or to.malformed_wallet_id:
            wallet = await uow.wallets.get(to.wallet_id) if to.wallet_id else None
            if wallet is None or wallet.kind is not AccountKind.CUSTOMER:
                raise not_found
            if wallet.currency is not code:
                if quoted:
                    raise DomainError(
                        ErrorCode.CURRENCY_MISMATCH,
                        f"This quote converts into {code.value}; the recipient's wallet holds "
                        f"{wallet.currency.value}.",
                        ("input", "to"),
                    )
                raise DomainError(
                    ErrorCode.QUOTE_REQUIRED,
                    f"The recipient's wallet is in {wallet.currency.value}: "
                    "create a quote to convert.",
                    ("input", "quoteId"),
                )
            return wallet
        try:
            if to.email is not None:
                recipient = await uow.users.get_by_email(
                    normalize_email(to.email, ("input", "to", "email"))
                )
            else:
                assert to.phone_number is not None
                recipient = await uow.users.get_by_phone(
                    normalize_phone(to.phone_number, ("input", "to", "phoneNumber"))
                )
        except DomainError:
            raise not_found from None
        wallet = await uow.wallets.for_user_currency(recipient.id, code) if recipient else None
        if wallet is None:
            raise not_found
        return wallet

    # ---------------------------------------------------------------- deposits

    async def start_deposit(
        self,
        user: User,
        wallet_id: uuid.UUID | None,
        raw_amount: Decimal,
        key: str,
        meta: RequestMeta,
    ) -> Outcome:
        payload = {"wallet": str(wallet_id), "amount": str(raw_amount)}
        async with self._uow() as uow:
            if (first := await claim_key(uow, user.id, key, "startDeposit", payload)) is not None:
                return await replay(uow, first)
            wallet = await self._own_wallet(uow, user, wallet_id, "walletId")
            _fiat_only(wallet.currency, "Deposits")
            amount = Money(parse_amount(raw_amount, wallet.currency), wallet.currency)
            tx = Transaction.start(
                TransactionKind.DEPOSIT,
                amount,
                self._clock(),
                status=TransactionStatus.PROCESSING,
                initiator_id=user.id,
                target_wallet_id=wallet.id,
                description="Deposit",
                metadata={"provider": self._provider.name},
            )
            try:
                url = await self._provider.initialize_deposit(tx.reference, amount, user.email)
            except ProviderUnavailable:
                raise DomainError(
                    ErrorCode.PROVIDER_UNAVAILABLE,
                    "The payment provider is unavailable; try again shortly.",
                ) from None
            except ProviderRejected as e:
                raise DomainError(
                    ErrorCode.INVALID_INPUT,
                    f"The payment provider refused: {e}",
                    ("input", "amount"),
                ) from None
            tx.metadata["payment_url"] = url
            await uow.ledger.add(tx)
            await uow.audit.record(
                audit(
                    "deposit.started",
                    meta,
                    actor_id=user.id,
                    target_type="Transaction",
                    target_id=tx.reference,
                    amount=str(amount.amount),
                    currency=amount.currency.value,
                )
            )
            outcome = Outcome(tx, url)
            await uow.idempotency.save(user.id, key, response_of(outcome))
            await uow.commit()
        return outcome

    # ---------------------------------------------------------------- withdrawals

    async def request_withdrawal(
        self,
        user: User,
        wallet_id: uuid.UUID | None,
        raw_amount: Decimal,
        account: BankAccount,
        key: str,
        meta: RequestMeta,
    ) -> Outcome:
        payload = {
            "wallet": str(wallet_id),
            "amount": str(raw_amount),
            "bank": [account.bank_code, account.account_number, account.account_name],
        }
        async with self._uow() as uow:
            if (
                first := await claim_key(uow, user.id, key, "requestWithdrawal", payload)
            ) is not None:
                return await replay(uow, first)
            wallet = await self._own_wallet(uow, user, wallet_id, "walletId")
            _fiat_only(wallet.currency, "Withdrawals")
            account = _clean_bank_account(account)
            amount = Money(parse_amount(raw_amount, wallet.currency), wallet.currency)
            locked = (await uow.ledger.lock_wallets([wallet.id]))[wallet.id]
            ensure_can_send(locked, ("input", "walletId"))
            await self._check_limit(uow, user, amount)
            hold(locked, amount)
            tx = Transaction.start(
                TransactionKind.WITHDRAWAL,
                amount,
                self._clock(),
                status=TransactionStatus.PROCESSING,
                initiator_id=user.id,
                source_wallet_id=wallet.id,
                description="Withdrawal",
                metadata={
                    "provider": self._provider.name,
                    "bank_code": account.bank_code,
                    "account_last4": account.account_number[-4:],
                    "account_name": account.account_name,
                },
            )
            await uow.ledger.save_wallets([locked])
            await uow.ledger.add(tx)
            await uow.audit.record(
                audit(
                    "withdrawal.requested",
                    meta,
                    actor_id=user.id,
                    target_type="Transaction",
                    target_id=tx.reference,
                    amount=str(amount.amount),
                    currency=amount.currency.value,
                )
            )
            await uow.idempotency.save(user.id, key, response_of(Outcome(tx)))
            await uow.commit()

        # The hold is committed: money cannot be spent twice while the provider works.
        try:
            code = await self._provider.payout(
                tx.reference, amount, account, f"Stacklo {tx.reference}"
            )
        except (ProviderUnavailable, ProviderRejected) as e:
            unavailable = isinstance(e, ProviderUnavailable)
            error = DomainError(
                ErrorCode.PROVIDER_UNAVAILABLE if unavailable else ErrorCode.INVALID_INPUT,
                "The payment provider is unavailable; nothing was withdrawn."
                if unavailable
                else f"The payment provider refused the payout: {e}",
                None if unavailable else ("input", "bankAccount"),
            )
            return await self._fail_withdrawal(user, key, tx.reference, error, meta)
        async with self._uow() as uow:
            current = await uow.ledger.by_reference(tx.reference, for_update=True)
            assert current is not None
            current.metadata["provider_transfer_code"] = code
            await uow.ledger.update(current, None)
            await uow.commit()
        return Outcome(current)

    async def _fail_withdrawal(
        self, user: User, key: str, reference: str, error: DomainError, meta: RequestMeta
    ) -> Outcome:
        async with self._uow() as uow:
            tx = await uow.ledger.by_reference(reference, for_update=True)
            assert tx is not None
            assert tx.source_wallet_id is not None
            if tx.status is TransactionStatus.PROCESSING:
                wallet = (await uow.ledger.lock_wallets([tx.source_wallet_id]))[tx.source_wallet_id]
                release(wallet, tx.money)
                change = tx.move_to(TransactionStatus.FAILED, self._clock(), error.message)
                await uow.ledger.save_wallets([wallet])
                await uow.ledger.update(tx, change)
                await uow.audit.record(
                    audit(
                        "withdrawal.failed",
                        meta,
                        actor_id=user.id,
                        target_type="Transaction",
                        target_id=tx.reference,
                        reason=error.code.value,
                    )
                )
            outcome = Outcome(tx, error=error)
            await uow.idempotency.save(user.id, key, response_of(outcome))
            await uow.commit()
        return outcome

    # ---------------------------------------------------------------- webhooks

    async def apply_provider_event(self, event: ProviderEvent, meta: RequestMeta) -> str:
        """Apply a verified provider event exactly once; returns what was done (for logs)."""
        provider = self._provider.name
        async with self._uow() as uow:
            tx = await uow.ledger.by_reference(event.reference, for_update=True)
            outcome = await self._apply(uow, tx, event, meta)
            fresh = await uow.ledger.record_provider_event(
                provider, event.kind, event.reference, event.provider_id, event.raw, outcome
            )
            if not fresh:
                return "duplicate"  # rolled back: a replay changes nothing
            await uow.commit()
        return outcome

    async def _apply(
        self, uow: UnitOfWork, tx: Transaction | None, event: ProviderEvent, meta: RequestMeta
    ) -> str:
        if tx is None:
            await uow.audit.record(
                audit(
                    "provider.unknown_reference",
                    meta,
                    actor_id=None,
                    target_type="Transaction",
                    target_id=event.reference,
                    event=event.kind,
                )
            )
            return "unknown_reference"
        now = self._clock()
        deposit = tx.kind is TransactionKind.DEPOSIT
        withdrawal = tx.kind is TransactionKind.WITHDRAWAL
        if tx.status is not TransactionStatus.PROCESSING or not (deposit or withdrawal):
            return "ignored"
        if event.kind == "charge.success" and deposit:
            if (
                event.amount_minor != to_minor_units(tx.money)
                or event.currency != tx.currency.value
            ):
                tx.metadata["review"] = {
                    "reason": "amount_or_currency_mismatch",
                    "expected": {
                        "amount_minor": to_minor_units(tx.money),
                        "currency": tx.currency.value,
                    },
                    "received": {"amount_minor": event.amount_minor, "currency": event.currency},
                }
                await uow.ledger.update(tx, None)
                await uow.audit.record(
                    audit(
                        "deposit.review_required",
                        meta,
                        actor_id=None,
                        target_type="Transaction",
                        target_id=tx.reference,
                        **tx.metadata["review"],
                    )
                )
                return "review_required"
            assert tx.target_wallet_id is not None
            clearing = await uow.ledger.platform_account(AccountKind.PROVIDER_CLEARING, tx.currency)
            await self._post(
                uow,
                tx,
                [
                    Posting(clearing, tx.currency, MONEY_CONTEXT.minus(tx.amount)),
                    Posting(tx.target_wallet_id, tx.currency, tx.amount),
                ],
                now,
            )
            return "credited"
        if event.kind == "charge.failed" and deposit:
            await uow.ledger.update(
                tx, tx.move_to(TransactionStatus.FAILED, now, "The payment did not go through.")
            )
            return "failed"
        if event.kind == "transfer.success" and withdrawal:
            assert tx.source_wallet_id is not None
            clearing = await uow.ledger.platform_account(AccountKind.PROVIDER_CLEARING, tx.currency)
            await self._post(
                uow,
                tx,
                [
                    Posting(
                        tx.source_wallet_id,
                        tx.currency,
                        MONEY_CONTEXT.minus(tx.amount),
                        release_hold=tx.amount,
                    ),
                    Posting(clearing, tx.currency, tx.amount),
                ],
                now,
            )
            return "paid_out"
        if event.kind in ("transfer.failed", "transfer.reversed") and withdrawal:
            assert tx.source_wallet_id is not None
            wallet = (await uow.ledger.lock_wallets([tx.source_wallet_id]))[tx.source_wallet_id]
            release(wallet, tx.money)
            await uow.ledger.save_wallets([wallet])
            reason = (
                "The bank transfer failed."
                if event.kind == "transfer.failed"
                else "The bank reversed the transfer."
            )
            await uow.ledger.update(tx, tx.move_to(TransactionStatus.FAILED, now, reason))
            return "released"
        return "ignored"

    @staticmethod
    async def _post(
        uow: UnitOfWork, tx: Transaction, postings: list[Posting], now: datetime
    ) -> None:
        locked = await uow.ledger.lock_wallets([p.wallet_id for p in postings])
        entries = apply_postings(locked, postings)
        await uow.ledger.save_wallets(list(locked.values()))
        await uow.ledger.add_entries(tx.id, entries, now)
        await uow.ledger.update(tx, tx.move_to(TransactionStatus.COMPLETED, now))

    # ---------------------------------------------------------------- freeze

    async def freeze_wallet(
        self, staff: User, wallet_id: uuid.UUID | None, frozen: bool, reason: str, meta: RequestMeta
    ) -> Wallet:
        why = clean_text(reason, ("input", "reason"), max_len=MAX_REASON)
        async with self._uow() as uow:
            wallet = await uow.wallets.get(wallet_id) if wallet_id else None
            if wallet is None or wallet.kind is not AccountKind.CUSTOMER:
                raise DomainError(ErrorCode.NOT_FOUND, "Wallet not found.", ("input", "walletId"))
            wallet.status = WalletStatus.FROZEN if frozen else WalletStatus.ACTIVE
            await uow.wallets.set_status(wallet.id, wallet.status)
            await uow.audit.record(
                audit(
                    "wallet.frozen" if frozen else "wallet.unfrozen",
                    meta,
                    actor_id=staff.id,
                    target_type="Wallet",
                    target_id=wallet.id,
                    reason=why,
                    owner_id=str(wallet.user_id),
                )
            )
            await uow.commit()
        return wallet


def _fiat_only(code: CurrencyCode, what: str) -> None:
    if CURRENCIES[code].kind is not CurrencyKind.FIAT:
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            f"{what} go through the bank rail, which carries fiat only.",
            ("input", "walletId"),
        )


def _clean_bank_account(account: BankAccount) -> BankAccount:
    base = ("input", "bankAccount")
    code = account.bank_code.strip()
    number = account.account_number.strip()
    if not re.fullmatch(r"[0-9]{3,10}", code):
        raise DomainError(
            ErrorCode.INVALID_INPUT, "bankCode must be 3 to 10 digits", (*base, "bankCode")
        )
    if not re.fullmatch(r"[0-9]{6,20}", number):
        raise DomainError(
            ErrorCode.INVALID_INPUT,
            "accountNumber must be 6 to 20 digits",
            (*base, "accountNumber"),
        )
    name = clean_text(account.account_name, (*base, "accountName"), max_len=100)
    return BankAccount(code, number, name)
