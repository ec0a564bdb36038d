"""startDeposit, requestWithdrawal."""

from __future__ import annotations

from typing import Annotated

import strawberry

from stacklo.domain.funding import RequestWithdrawal, StartDeposit
from stacklo.domain.ports import BankAccount
from stacklo.resolvers.errors import outcome_errors, user_errors
from stacklo.resolvers.ids import node_id
from stacklo.schema.context import Info
from stacklo.schema.ledger import Transaction
from stacklo.schema.movements import (
    RequestWithdrawalInput,
    RequestWithdrawalPayload,
    StartDepositInput,
    StartDepositPayload,
)


def _absolute(info: Info, url: str | None) -> str | None:
    # The sandbox answers with a path on this server; clients want a URL they can open.
    if url and url.startswith("/") and info.context.request is not None:
        return str(info.context.request.base_url).rstrip("/") + url
    return url


@user_errors(StartDepositPayload)
async def start_deposit(
    info: Info,
    input: Annotated[StartDepositInput, strawberry.argument(description="What to deposit.")],
) -> StartDepositPayload:
    viewer = await info.context.require_viewer()
    outcome = await info.context.services.funding.start_deposit(
        StartDeposit(
            user=viewer.user,
            wallet=node_id(input.wallet_id, "Wallet", ("input", "walletId")),
            amount=input.amount,
            idempotency_key=input.idempotency_key,
            meta=info.context.meta,
        )
    )
    return StartDepositPayload(
        transaction=Transaction.of(outcome.transaction),
        payment_url=_absolute(info, outcome.payment_url),
        user_errors=outcome_errors(outcome),
    )


@user_errors(RequestWithdrawalPayload)
async def request_withdrawal(
    info: Info,
    input: Annotated[
        RequestWithdrawalInput, strawberry.argument(description="What to withdraw, and where.")
    ],
) -> RequestWithdrawalPayload:
    viewer = await info.context.require_viewer()
    bank = input.bank_account
    outcome = await info.context.services.funding.request_withdrawal(
        RequestWithdrawal(
            user=viewer.user,
            wallet=node_id(input.wallet_id, "Wallet", ("input", "walletId")),
            amount=input.amount,
            bank_account=BankAccount(bank.bank_code, bank.account_number, bank.account_name),
            idempotency_key=input.idempotency_key,
            meta=info.context.meta,
        )
    )
    return RequestWithdrawalPayload(
        transaction=Transaction.of(outcome.transaction), user_errors=outcome_errors(outcome)
    )
