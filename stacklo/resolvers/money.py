"""startDeposit, requestWithdrawal, sendMoney, freezeWallet, transaction(reference)."""

from __future__ import annotations

import uuid

from stacklo.domain import ledger
from stacklo.domain.models import Viewer
from stacklo.domain.outcomes import Outcome
from stacklo.domain.payments import Recipient
from stacklo.domain.ports import BankAccount
from stacklo.resolvers.errors import user_errors
from stacklo.schema.common import UserError, node_uuid
from stacklo.schema.context import Info
from stacklo.schema.types import (
    FreezeWalletInput,
    FreezeWalletPayload,
    RequestWithdrawalInput,
    RequestWithdrawalPayload,
    SendMoneyInput,
    SendMoneyPayload,
    StartDepositInput,
    StartDepositPayload,
    Transaction,
    Wallet,
)


def wallet_uuid(global_id: str | None) -> uuid.UUID | None:
    return node_uuid(global_id, "Wallet")


def _errors(outcome: Outcome) -> list[UserError]:
    return [UserError.of(outcome.error)] if outcome.error else []


def _absolute(info: Info, url: str | None) -> str | None:
    # The sandbox answers with a path on this server; clients want a URL they can open.
    if url and url.startswith("/") and info.context.request is not None:
        return str(info.context.request.base_url).rstrip("/") + url
    return url


@user_errors(SendMoneyPayload)
async def send_money(info: Info, input: SendMoneyInput) -> SendMoneyPayload:
    viewer = await info.context.require_viewer()
    to = input.to
    target = wallet_uuid(to.wallet_id)
    outcome = await info.context.services.payments.send_money(
        viewer.user,
        wallet_uuid(input.from_wallet_id),
        Recipient(
            email=to.email,
            phone_number=to.phone_number,
            wallet_id=target,
            malformed_wallet_id=to.wallet_id is not None and target is None,
        ),
        input.amount,
        input.idempotency_key,
        note=input.note,
        quote_id=input.quote_id,
        meta=info.context.meta,
        quote_uuid=node_uuid(input.quote_id, "Quote"),
    )
    return SendMoneyPayload(
        transaction=Transaction.of(outcome.transaction), user_errors=_errors(outcome)
    )


@user_errors(StartDepositPayload)
async def start_deposit(info: Info, input: StartDepositInput) -> StartDepositPayload:
    viewer = await info.context.require_viewer()
    outcome = await info.context.services.payments.start_deposit(
        viewer.user,
        wallet_uuid(input.wallet_id),
        input.amount,
        input.idempotency_key,
        info.context.meta,
    )
    return StartDepositPayload(
        transaction=Transaction.of(outcome.transaction),
        payment_url=_absolute(info, outcome.payment_url),
        user_errors=_errors(outcome),
    )


@user_errors(RequestWithdrawalPayload)
async def request_withdrawal(info: Info, input: RequestWithdrawalInput) -> RequestWithdrawalPayload:
    viewer = await info.context.require_viewer()
    bank = input.bank_account
    outcome = await info.context.services.payments.request_withdrawal(
        viewer.user,
        wallet_uuid(input.wallet_id),
        input.amount,
        BankAccount(bank.bank_code, bank.account_number, bank.account_name),
        input.idempotency_key,
        info.context.meta,
    )
    return RequestWithdrawalPayload(
        transaction=Transaction.of(outcome.transaction), user_errors=_errors(outcome)
    )


@user_errors(FreezeWalletPayload)
async def freeze_wallet(info: Info, input: FreezeWalletInput) -> FreezeWalletPayload:
    viewer = await info.context.require_viewer()
    wallet = await info.context.services.payments.freeze_wallet(
        viewer.user, wallet_uuid(input.wallet_id), input.frozen, input.reason, info.context.meta
    )
    return FreezeWalletPayload(wallet=Wallet.of(wallet))


async def transaction(info: Info, reference: str) -> Transaction | None:
    """By public reference; null unless the viewer is a party to it (or staff)."""
    viewer = await info.context.viewer()
    if viewer is None or len(reference) > 32:
        return None
    async with info.context.services.uow(read_only=True) as uow:
        tx = await uow.ledger.by_reference(reference.strip().upper())
    return Transaction.of(tx) if tx and await may_see_transaction(info, viewer, tx) else None


async def may_see_transaction(info: Info, viewer: Viewer, tx: ledger.Transaction) -> bool:
    if info.context.services.authorizer.allowed(viewer.user.roles, "transactions", "read"):
        return True
    for wallet_id in (tx.source_wallet_id, tx.target_wallet_id):
        wallet = await info.context.loaders.wallets.load(wallet_id) if wallet_id else None
        if wallet is not None and wallet.user_id == viewer.user.id:
            return True
    return False
