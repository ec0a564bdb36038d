"""Money in and out through the payment provider: deposits, withdrawals, and the provider's
word on them.

- A deposit asks the provider for a payment page inside the transaction that records it
  (nothing is written if the provider says no) and stays PROCESSING until the provider says
  it succeeded (credited from provider clearing) or failed.
- A withdrawal holds the amount and commits, then asks the provider to pay out; if the
  provider refuses, or certainly never got the request (unreachable, circuit open), the hold is
  released at once in a second transaction and the withdrawal FAILED. If the request may have
  reached it and the answer was lost (timeout, 5xx), the withdrawal stays PROCESSING with its
  hold: releasing it could pay out money the wallet still has, and asking again could pay
  twice. The provider's later word (webhook, or a lookup by reference when the same request is
  retried) posts it (the hold is consumed and the wallet debited) or releases it.
- Each provider event is applied once (deduplicated by provider, event and reference).
- What no webhook and no retry settles, the worker's reconciler does: it looks up deposits and
  withdrawals left PROCESSING and applies the provider's final word as the webhook would;
  an unpaid deposit past its expiry is FAILED (a later payment is credited as any payment
  after a failure).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from decimal import Decimal

from stacklo.domain.errors import DomainError, ErrorCode
from stacklo.domain.ledger import (
    Posting,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from stacklo.domain.models import WORKER, AccountKind, AuditEvent, RequestMeta, User, audit
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
    DepositLookup,
    DepositVerification,
    PaymentProvider,
    PayoutLookup,
    PayoutStatus,
    ProviderEvent,
    ProviderEventKind,
    ProviderOutcomeUnknown,
    ProviderRejected,
    ProviderUnavailable,
    UnitOfWork,
    UnitOfWorkFactory,
)
from stacklo.domain.spending import DailyLimits
from stacklo.domain.validation import clean_text
from stacklo.domain.wallets import owned_wallet

TRANSFER_FAILED = "The bank transfer failed."
REVERSED = "The bank reversed the transfer."
NOT_COMPLETED = "The payment was not completed in time."
# Deposits, and withdrawals, looked up per scheduler round (one provider request each).
RECONCILE_BATCH = 50
# A deposit's final statuses as a lookup reports them, and the webhook each stands for.
_DEPOSIT_ENDS = {
    "success": ("charge.success", ProviderEventKind.DEPOSIT_SUCCEEDED),
    "failed": ("charge.failed", ProviderEventKind.DEPOSIT_FAILED),
}


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
        *,
        deposit_lookup_after: timedelta = timedelta(minutes=2),
        deposit_expiry: timedelta = timedelta(hours=24),
    ):
        """``deposit_lookup_after``: how old a deposit without the provider's word must be
        before the reconciler asks about it; ``deposit_expiry``: how old an unpaid one must be
        before it is FAILED as never completed."""
        self._uow = uow
        self._clock = clock
        self._provider = provider
        self._limits = limits
        self._deposit_lookup_after = deposit_lookup_after
        self._deposit_expiry = deposit_expiry

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
                replayed = await replay(uow, first)
            else:
                replayed = None
                held = await self._hold(uow, cmd)
                await uow.commit()
        if replayed is not None:
            # A client retrying a withdrawal still in flight is the moment to ask the provider
            # what became of it (its answer may have been lost, or its webhook).
            if _in_flight(replayed.transaction):
                return replace(replayed, transaction=await self._reconcile(replayed.transaction))
            return replayed
        # The hold is committed: the money cannot be spent twice while the provider works.
        tx, account = held.transaction, _clean_bank_account(bank)
        try:
            code = await self._provider.payout(
                tx.reference, tx.money, account, f"Stacklo {tx.reference}"
            )
        except ProviderOutcomeUnknown:
            return Outcome(await self._mark_unknown(tx.reference))
        except (ProviderUnavailable, ProviderRejected) as e:
            return await self._fail_withdrawal(cmd, tx.reference, _payout_refused(e))
        async with self._uow() as uow:
            current = await uow.ledger.by_reference(tx.reference, for_update=True)
            assert current is not None
            current.metadata["provider_transfer_code"] = code
            await uow.ledger.annotate(current)
            await uow.commit()
        return Outcome(current)

    async def _mark_unknown(self, reference: str) -> Transaction:
        """The payout request may have reached the provider: keep the hold, note why."""
        async with self._uow() as uow:
            tx = await uow.ledger.by_reference(reference, for_update=True)
            assert tx is not None
            if tx.status is TransactionStatus.PROCESSING:  # else a webhook already settled it
                tx.metadata["provider_outcome"] = "unknown"
                await uow.ledger.annotate(tx)
                await uow.commit()
        return tx

    async def reconcile_withdrawals(self, batch: int = RECONCILE_BATCH) -> int:
        """The scheduler's round for withdrawals that waited past the provider's grace without
        its word (its answer lost, its webhook lost, or the process gone before it asked):
        look each up as a same-key retry would, least recently asked first, and post or
        release what the provider says is final. Returns how many it settled."""
        provider = self._provider
        if not isinstance(provider, PayoutLookup):
            return 0
        async with self._uow(read_only=True) as uow:
            waiting = await uow.ledger.in_flight(
                TransactionKind.WITHDRAWAL, self._clock() - provider.unknown_outcome_grace, batch
            )
        settled = 0
        for tx in waiting:
            current = await self._reconcile(tx)
            if current.status is TransactionStatus.PROCESSING:
                await self._asked(tx.reference)
            else:
                settled += 1
        return settled

    async def reconcile_deposits(self, batch: int = RECONCILE_BATCH) -> int:
        """The scheduler's round for deposits without the provider's word (the payer paid and
        the webhook was lost, or never paid): look each up, least recently asked first, and
        apply what it says as its webhook would (named alike, so the webhook arriving after is a
        duplicate). One still unpaid past the expiry is FAILED as never completed; a payment
        after that is credited late, like any payment after a failure. Returns how many it
        settled."""
        provider = self._provider
        if not isinstance(provider, DepositLookup):
            return 0
        now = self._clock()
        async with self._uow(read_only=True) as uow:
            waiting = await uow.ledger.in_flight(
                TransactionKind.DEPOSIT, now - self._deposit_lookup_after, batch
            )
        settled = 0
        for tx in waiting:
            try:
                word: DepositVerification | None = await provider.verify_deposit(tx.reference)
            except ProviderRejected:  # it does not know the reference: never paid
                word = None
            except ProviderUnavailable:
                continue  # no word at all: ask again next round
            if word is not None and word.status in _DEPOSIT_ENDS:
                event = ProviderEvent(
                    name=_DEPOSIT_ENDS[word.status][0],
                    kind=_DEPOSIT_ENDS[word.status][1],
                    reference=tx.reference,
                    amount_minor=word.amount_minor,
                    currency=word.currency,
                    provider_id=word.provider_id,
                    raw={"source": "lookup", "status": word.status},
                )
                # (a payment of another amount is "review_required": kept for a person)
                if await self.apply_provider_event(event, WORKER) in ("credited", "failed"):
                    settled += 1
            elif now - tx.created_at >= self._deposit_expiry:
                settled += await self._expire_deposit(tx.reference)
            else:
                await self._asked(tx.reference)
        return settled

    async def _expire_deposit(self, reference: str) -> int:
        async with self._uow() as uow:
            tx = await uow.ledger.by_reference(reference, for_update=True)
            assert tx is not None
            if tx.status is not TransactionStatus.PROCESSING:
                return 0  # its webhook came meanwhile
            await self._fail(uow, tx, NOT_COMPLETED)
            await uow.audit.record(
                audit(
                    "deposit.expired",
                    WORKER,
                    actor_id=None,
                    target_type="Transaction",
                    target_id=tx.reference,
                )
            )
            await uow.commit()
        return 1

    async def _asked(self, reference: str) -> None:
        """Still in flight: note when the provider was asked, which sends the deposit or
        withdrawal to the back of the next round's line."""
        async with self._uow() as uow:
            tx = await uow.ledger.by_reference(reference, for_update=True)
            assert tx is not None
            if tx.status is TransactionStatus.PROCESSING:
                tx.metadata["provider_asked_at"] = self._clock().isoformat()
                await uow.ledger.annotate(tx)
                await uow.commit()

    async def _reconcile(self, tx: Transaction) -> Transaction:
        """Settle a withdrawal in flight from the provider's own record.

        "Never heard of it" is believed only after the provider's grace, when the lost request
        can no longer be on its way; until then, and while the provider cannot answer or the
        transfer is not final, the withdrawal stays PROCESSING with its hold.
        """
        provider = self._provider
        if not isinstance(provider, PayoutLookup):
            return tx
        if self._clock() - tx.created_at < provider.unknown_outcome_grace:
            return tx
        try:
            status = await provider.payout_status(tx.reference)
        except (ProviderUnavailable, ProviderRejected):
            return tx
        if status is PayoutStatus.PENDING:
            return tx
        async with self._uow() as uow:
            current = await uow.ledger.by_reference(tx.reference, for_update=True)
            assert current is not None
            if current.status is not TransactionStatus.PROCESSING:
                return current  # a webhook settled it meanwhile
            if status is PayoutStatus.NOT_FOUND and "provider_transfer_code" in current.metadata:
                return current  # the provider named its transfer: its "not found" is a glitch
            if status is PayoutStatus.SUCCEEDED:
                await self._post_payout(uow, current)
            else:
                await self._fail(uow, current, _PAYOUT_ENDS[status])
            await uow.commit()
        return current

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
        if tx.kind is not event.kind.applies_to:
            return "ignored"
        if tx.status is not TransactionStatus.PROCESSING:
            return await self._after_the_end(uow, tx, event, meta)
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
        await self._fail(uow, tx, TRANSFER_FAILED if failed else REVERSED)
        return "released"

    async def _after_the_end(
        self, uow: UnitOfWork, tx: Transaction, event: ProviderEvent, meta: RequestMeta
    ) -> str:
        """The provider's word on a movement already settled (events arrive in any order).

        Only two late words move money, each once (events are deduplicated): a payment that
        went through after the deposit was reported failed is credited under a new deposit,
        and a payout the bank returned after it was paid out is credited back. A payout
        reported paid after it was settled as failed cannot be undone here: it is kept for a
        person (``withdrawal.review_required``). The rest changes nothing.
        """
        kind, status = event.kind, tx.status
        if kind is ProviderEventKind.DEPOSIT_SUCCEEDED and status is TransactionStatus.FAILED:
            if (
                event.amount_minor != to_minor_units(tx.money)
                or event.currency != tx.currency.value
            ):
                return await self._review(uow, tx, event, meta)
            await self._credit_late(uow, tx, "Deposit paid after it was reported failed")
            return "credited_late"
        if kind is ProviderEventKind.PAYOUT_REVERSED and status is TransactionStatus.COMPLETED:
            await self._credit_late(uow, tx, "Withdrawal returned by the bank")
            return "returned"
        if (
            kind is ProviderEventKind.PAYOUT_SUCCEEDED
            and status is TransactionStatus.FAILED
            and tx.failure_reason != REVERSED
        ):  # (after a reversal it is just the earlier event arriving late)
            tx.metadata["review"] = {"reason": "paid_out_after_failure"}
            await uow.ledger.annotate(tx)
            await uow.audit.record(
                audit(
                    "withdrawal.review_required",
                    meta,
                    actor_id=None,
                    target_type="Transaction",
                    target_id=tx.reference,
                    reason="paid_out_after_failure",
                )
            )
            return "review_required"
        return "ignored"

    async def _credit_late(self, uow: UnitOfWork, settled: Transaction, why: str) -> None:
        """Provider clearing -> the customer's wallet, as a new completed DEPOSIT linked to
        ``settled`` (whose own status is final and stays as it is)."""
        wallet = settled.target_wallet_id or settled.source_wallet_id
        assert wallet is not None
        credit = Transaction.start(
            TransactionKind.DEPOSIT,
            settled.money,
            self._clock(),
            status=TransactionStatus.COMPLETED,
            initiator_id=settled.initiator_id,
            target_wallet_id=wallet,
            description=why,
            metadata={"provider": self._provider.name, "provider_reference": settled.reference},
        )
        clearing = await uow.ledger.platform_account(
            AccountKind.PROVIDER_CLEARING, settled.currency
        )
        postings = [
            Posting(clearing, settled.currency, MONEY_CONTEXT.minus(settled.amount)),
            Posting(wallet, settled.currency, settled.amount),
        ]
        await book(uow, Movement(credit, postings=postings))
        settled.metadata["credited_by"] = credit.reference
        await uow.ledger.annotate(settled)

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


_PAYOUT_ENDS = {
    PayoutStatus.FAILED: TRANSFER_FAILED,
    PayoutStatus.REVERSED: REVERSED,
    PayoutStatus.NOT_FOUND: "The payment provider never made the transfer; nothing was withdrawn.",
}


def _in_flight(tx: Transaction) -> bool:
    return tx.kind is TransactionKind.WITHDRAWAL and tx.status is TransactionStatus.PROCESSING


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
