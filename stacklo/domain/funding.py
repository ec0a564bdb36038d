"""Money in and out through the payment provider: deposits, withdrawals, and the provider's
word on them.

- A deposit asks the provider for a payment page inside the transaction that records it
  (nothing is written if the provider says no) and stays PROCESSING until the provider says
  it succeeded (credited from provider clearing) or failed.
- A withdrawal holds the amount and commits, then asks the provider to pay out; if the
  provider cannot be reached or refuses, the hold is released at once in a second transaction
  and the withdrawal FAILED. The provider's later word posts it (the hold is consumed and the
  wallet debited) or releases it.
- Each provider event is applied once (deduplicated by provider, event and reference).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.ledger import (
    Posting,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from stacklo.domain.models import AccountKind, AuditEvent, RequestMeta, User, audit
from stacklo.domain.money import (
    CURRENCIES,
    MONEY_CONTEXT,
    CurrencyCode,
    CurrencyKind,
    Money,
    parse_amount,
    to_minor_units,
)
from stacklo.domain.movements import Hold, Idempotent, Movement, Sender, answer, book
from stacklo.domain.outcomes import Outcome, claim_key, replay
from stacklo.domain.ports import (
    BankAccount,
    Clock,
    PaymentProvider,
    ProviderEvent,
    ProviderEventKind,
    ProviderRejected,
    ProviderUnavailable,
    UnitOfWork,
    UnitOfWorkFactory,
)
from stacklo.domain.spending import DailyLimits
from stacklo.domain.validation import clean_text
from stacklo.domain.wallets import owned_wallet


@dataclass(frozen=True, slots=True)
class StartDeposit:
    user: User
    wallet: uuid.UUID
    amount: Decimal
    idempotency_key: str
    meta: RequestMeta


@dataclass(frozen=True, slots=True)
class RequestWithdrawal:
    user: User
    wallet: uuid.UUID
    amount: Decimal
    bank_account: BankAccount
    idempotency_key: str
    meta: RequestMeta


class Funding:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        provider: PaymentProvider,
        limits: DailyLimits,
    ):
        self._uow = uow
        self._clock = clock
        self._provider = provider
        self._limits = limits

    # ---------------------------------------------------------------- deposits

    async def start_deposit(self, cmd: StartDeposit) -> Outcome:
        request = {"wallet": str(cmd.wallet), "amount": str(cmd.amount)}
        async with self._uow() as uow:
            first = await claim_key(uow, cmd.user.id, cmd.idempotency_key, "startDeposit", request)
            if first is not None:
                return await replay(uow, first)
            wallet = await owned_wallet(uow, cmd.user, cmd.wallet, "walletId")
            _fiat_only(wallet.currency, "Deposits")
            amount = Money(parse_amount(cmd.amount, wallet.currency), wallet.currency)
            tx = Transaction.start(
                TransactionKind.DEPOSIT,
                amount,
                self._clock(),
                status=TransactionStatus.PROCESSING,
                initiator_id=cmd.user.id,
                target_wallet_id=wallet.id,
                description="Deposit",
                metadata={"provider": self._provider.name},
            )
            url = await self._payment_page(tx, amount, cmd.user)
            tx.metadata["payment_url"] = url
            outcome = await book(
                uow,
                Movement(
                    tx,
                    audit=_audit("deposit.started", cmd.meta, cmd.user, tx),
                    idempotent=Idempotent(cmd.user.id, cmd.idempotency_key, payment_url=url),
                ),
            )
            await uow.commit()
        return outcome

    async def _payment_page(self, tx: Transaction, amount: Money, user: User) -> str:
        try:
            return await self._provider.initialize_deposit(tx.reference, amount, user.email)
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

    # ---------------------------------------------------------------- withdrawals

    async def request_withdrawal(self, cmd: RequestWithdrawal) -> Outcome:
        bank = cmd.bank_account
        request = {
            "wallet": str(cmd.wallet),
            "amount": str(cmd.amount),
            "bank": [bank.bank_code, bank.account_number, bank.account_name],
        }
        async with self._uow() as uow:
            first = await claim_key(
                uow, cmd.user.id, cmd.idempotency_key, "requestWithdrawal", request
            )
            if first is not None:
                return await replay(uow, first)
            held = await self._hold(uow, cmd)
            await uow.commit()
        # The hold is committed: the money cannot be spent twice while the provider works.
        tx, account = held.transaction, _clean_bank_account(bank)
        try:
            code = await self._provider.payout(
                tx.reference, tx.money, account, f"Stacklo {tx.reference}"
            )
        except (ProviderUnavailable, ProviderRejected) as e:
            return await self._fail_withdrawal(cmd, tx.reference, _payout_refused(e))
        async with self._uow() as uow:
            current = await uow.ledger.by_reference(tx.reference, for_update=True)
            assert current is not None
            current.metadata["provider_transfer_code"] = code
            await uow.ledger.annotate(current)
            await uow.commit()
        return Outcome(current)

    async def _hold(self, uow: UnitOfWork, cmd: RequestWithdrawal) -> Outcome:
        wallet = await owned_wallet(uow, cmd.user, cmd.wallet, "walletId")
        _fiat_only(wallet.currency, "Withdrawals")
        account = _clean_bank_account(cmd.bank_account)
        amount = Money(parse_amount(cmd.amount, wallet.currency), wallet.currency)
        tx = Transaction.start(
            TransactionKind.WITHDRAWAL,
            amount,
            self._clock(),
            status=TransactionStatus.PROCESSING,
            initiator_id=cmd.user.id,
            source_wallet_id=wallet.id,
            description="Withdrawal",
            metadata={
                "provider": self._provider.name,
                "bank_code": account.bank_code,
                "account_last4": account.account_number[-4:],
                "account_name": account.account_name,
            },
        )

        return await book(
            uow,
            Movement(
                tx,
                holds=[Hold(wallet.id, amount.amount)],
                senders=[Sender(wallet.id, ("input", "walletId"))],
                cap=self._limits.cap(cmd.user, amount),
                audit=_audit("withdrawal.requested", cmd.meta, cmd.user, tx),
                idempotent=Idempotent(cmd.user.id, cmd.idempotency_key),
            ),
        )

    async def _fail_withdrawal(
        self, cmd: RequestWithdrawal, reference: str, error: DomainError
    ) -> Outcome:
        """The provider never took the payout: release the hold, fail it, answer why."""
        async with self._uow() as uow:
            tx = await uow.ledger.by_reference(reference, for_update=True)
            assert tx is not None
            assert tx.source_wallet_id is not None
            idempotent = Idempotent(cmd.user.id, cmd.idempotency_key, error=error)
            if tx.status is not TransactionStatus.PROCESSING:
                outcome = await answer(uow, tx, idempotent)  # settled meanwhile: a webhook won
            else:
                outcome = await book(
                    uow,
                    Movement(
                        tx,
                        holds=[Hold(tx.source_wallet_id, MONEY_CONTEXT.minus(tx.amount))],
                        change=tx.move_to(TransactionStatus.FAILED, self._clock(), error.message),
                        audit=_audit(
                            "withdrawal.failed", cmd.meta, cmd.user, tx, reason=error.code.value
                        ),
                        idempotent=idempotent,
                    ),
                )
            await uow.commit()
        return outcome

    # ---------------------------------------------------------------- provider events

    async def apply_provider_event(self, event: ProviderEvent, meta: RequestMeta) -> str:
        """Apply a verified provider event exactly once; returns what was done (for logs)."""
        async with self._uow() as uow:
            tx = await uow.ledger.by_reference(event.reference, for_update=True)
            outcome = await self._apply(uow, tx, event, meta)
            fresh = await uow.ledger.record_provider_event(
                self._provider.name,
                event.name,
                event.reference,
                event.provider_id,
                event.raw,
                outcome,
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
                    event=event.name,
                )
            )
            return "unknown_reference"
        if tx.status is not TransactionStatus.PROCESSING or tx.kind is not event.kind.applies_to:
            return "ignored"
        if event.kind is ProviderEventKind.DEPOSIT_SUCCEEDED:
            if (
                event.amount_minor != to_minor_units(tx.money)
                or event.currency != tx.currency.value
            ):
                return await self._review(uow, tx, event, meta)
            return await self._credit_deposit(uow, tx)
        if event.kind is ProviderEventKind.DEPOSIT_FAILED:
            await self._fail(uow, tx, "The payment did not go through.")
            return "failed"
        if event.kind is ProviderEventKind.PAYOUT_SUCCEEDED:
            return await self._post_payout(uow, tx)
        failed = event.kind is ProviderEventKind.PAYOUT_FAILED
        await self._fail(
            uow, tx, "The bank transfer failed." if failed else "The bank reversed the transfer."
        )
        return "released"

    async def _credit_deposit(self, uow: UnitOfWork, tx: Transaction) -> str:
        """Provider clearing -> the wallet, and the deposit COMPLETED."""
        assert tx.target_wallet_id is not None
        clearing = await uow.ledger.platform_account(AccountKind.PROVIDER_CLEARING, tx.currency)
        postings = [
            Posting(clearing, tx.currency, MONEY_CONTEXT.minus(tx.amount)),
            Posting(tx.target_wallet_id, tx.currency, tx.amount),
        ]
        change = tx.move_to(TransactionStatus.COMPLETED, self._clock())
        await book(uow, Movement(tx, postings=postings, change=change))
        return "credited"

    async def _post_payout(self, uow: UnitOfWork, tx: Transaction) -> str:
        """The wallet (its hold consumed) -> provider clearing, and the withdrawal COMPLETED."""
        assert tx.source_wallet_id is not None
        clearing = await uow.ledger.platform_account(AccountKind.PROVIDER_CLEARING, tx.currency)
        postings = [
            Posting(
                tx.source_wallet_id,
                tx.currency,
                MONEY_CONTEXT.minus(tx.amount),
                release_hold=tx.amount,
            ),
            Posting(clearing, tx.currency, tx.amount),
        ]
        change = tx.move_to(TransactionStatus.COMPLETED, self._clock())
        await book(uow, Movement(tx, postings=postings, change=change))
        return "paid_out"

    async def _fail(self, uow: UnitOfWork, tx: Transaction, reason: str) -> None:
        """FAILED; a withdrawal's hold is given back."""
        holds = []
        if tx.kind is TransactionKind.WITHDRAWAL:
            assert tx.source_wallet_id is not None
            holds.append(Hold(tx.source_wallet_id, MONEY_CONTEXT.minus(tx.amount)))
        change = tx.move_to(TransactionStatus.FAILED, self._clock(), reason)
        await book(uow, Movement(tx, holds=holds, change=change))

    @staticmethod
    async def _review(
        uow: UnitOfWork, tx: Transaction, event: ProviderEvent, meta: RequestMeta
    ) -> str:
        """Paid another amount or currency than asked: not credited, kept for a person."""
        tx.metadata["review"] = {
            "reason": "amount_or_currency_mismatch",
            "expected": {"amount_minor": to_minor_units(tx.money), "currency": tx.currency.value},
            "received": {"amount_minor": event.amount_minor, "currency": event.currency},
        }
        await uow.ledger.annotate(tx)
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


def _audit(action: str, meta: RequestMeta, user: User, tx: Transaction, **more: str) -> AuditEvent:
    return audit(
        action,
        meta,
        actor_id=user.id,
        target_type="Transaction",
        target_id=tx.reference,
        amount=str(tx.amount),
        currency=tx.currency.value,
        **more,
    )


def _payout_refused(error: Exception) -> DomainError:
    if isinstance(error, ProviderUnavailable):
        return DomainError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            "The payment provider is unavailable; nothing was withdrawn.",
        )
    return DomainError(
        ErrorCode.INVALID_INPUT,
        f"The payment provider refused the payout: {error}",
        ("input", "bankAccount"),
    )


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
