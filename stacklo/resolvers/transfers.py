"""sendMoney."""

from __future__ import annotations

from typing import Annotated

import strawberry

from stacklo.domain.transfers import RECIPIENT_NOT_FOUND, Recipient, SendMoney
from stacklo.resolvers.errors import outcome_errors, user_errors
from stacklo.resolvers.ids import node_id, optional_node_id
from stacklo.schema.context import Info
from stacklo.schema.ledger import Transaction
from stacklo.schema.movements import SendMoneyInput, SendMoneyPayload


@user_errors(SendMoneyPayload)
async def send_money(
    info: Info,
    input: Annotated[SendMoneyInput, strawberry.argument(description="The transfer.")],
) -> SendMoneyPayload:
    viewer = await info.context.require_viewer()
    to = input.to
    outcome = await info.context.services.transfers.send(
        SendMoney(
            user=viewer.user,
            from_wallet=node_id(input.from_wallet_id, "Wallet", ("input", "fromWalletId")),
            to=Recipient(
                email=to.email,
                phone_number=to.phone_number,
                wallet=optional_node_id(
                    to.wallet_id, "Wallet", ("input", "to"), RECIPIENT_NOT_FOUND
                ),
            ),
            amount=input.amount,
            idempotency_key=input.idempotency_key,
            meta=info.context.meta,
            note=input.note,
            quote=optional_node_id(input.quote_id, "Quote", ("input", "quoteId")),
        )
    )
    return SendMoneyPayload(
        transaction=Transaction.of(outcome.transaction), user_errors=outcome_errors(outcome)
    )
