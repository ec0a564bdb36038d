"""Inputs and payloads of what moves money or changes a wallet: sendMoney, startDeposit,
requestWithdrawal, openWallet, freezeWallet."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from stacklo.schema.common import CurrencyCode, UserError
from stacklo.schema.ledger import Transaction, Wallet


@strawberry.input
class OpenWalletInput:
    currency: CurrencyCode


@strawberry.type
class OpenWalletPayload:
    wallet: Wallet | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class StartDepositInput:
    wallet_id: strawberry.ID
    amount: Decimal
    idempotency_key: str


@strawberry.type
class StartDepositPayload:
    transaction: Transaction | None = None
    payment_url: str | None = strawberry.field(
        default=None, description="Where the payer completes the payment with the provider."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class BankAccountInput:
    bank_code: str
    account_number: str
    account_name: str


@strawberry.input
class RequestWithdrawalInput:
    wallet_id: strawberry.ID
    amount: Decimal
    bank_account: BankAccountInput
    idempotency_key: str


@strawberry.type
class RequestWithdrawalPayload:
    transaction: Transaction | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input(description="Exactly one of the fields.")
class RecipientInput:
    email: str | None = None
    phone_number: str | None = None
    wallet_id: strawberry.ID | None = None


@strawberry.input
class SendMoneyInput:
    from_wallet_id: strawberry.ID
    to: RecipientInput
    amount: Decimal
    quote_id: strawberry.ID | None = strawberry.field(
        default=None, description="Required when the recipient's wallet is in another currency."
    )
    note: str | None = None
    idempotency_key: str


@strawberry.type
class SendMoneyPayload:
    transaction: Transaction | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class FreezeWalletInput:
    wallet_id: strawberry.ID
    frozen: bool
    reason: str


@strawberry.type
class FreezeWalletPayload:
    wallet: Wallet | None = None
    user_errors: list[UserError] = strawberry.field(default_factory=list)
