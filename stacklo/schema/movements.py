"""Inputs and payloads of what moves money or changes a wallet: sendMoney, startDeposit,
requestWithdrawal, openWallet, freezeWallet."""

from __future__ import annotations

from decimal import Decimal

import strawberry

from stacklo.schema.common import AMOUNT, IDEMPOTENCY_KEY, USER_ERRORS, CurrencyCode, UserError
from stacklo.schema.ledger import Transaction, Wallet


@strawberry.input(description="The wallet to open.")
class OpenWalletInput:
    currency: CurrencyCode = strawberry.field(
        description="Its currency; the viewer must not have a wallet in it yet (WALLET_EXISTS)."
    )


@strawberry.type(description="The answer to openWallet.")
class OpenWalletPayload:
    wallet: Wallet | None = strawberry.field(
        default=None, description="The new ACTIVE wallet, empty; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.input(description="A deposit through the payment provider.")
class StartDepositInput:
    wallet_id: strawberry.ID = strawberry.field(
        description="One of the viewer's wallets (a Wallet global ID; NOT_FOUND otherwise), in a "
        "fiat currency (INVALID_INPUT otherwise)."
    )
    amount: Decimal = strawberry.field(
        description="What to pay in, in the wallet's currency. " + AMOUNT
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)


@strawberry.type(description="The answer to startDeposit.")
class StartDepositPayload:
    transaction: Transaction | None = strawberry.field(
        default=None, description="The PROCESSING DEPOSIT; null when refused."
    )
    payment_url: str | None = strawberry.field(
        default=None,
        description="Where the payer completes the payment with the provider; null when refused.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.input(description="The bank account to pay out to.")
class BankAccountInput:
    bank_code: str = strawberry.field(description="The bank's code: 3 to 10 digits.")
    account_number: str = strawberry.field(description="6 to 20 digits.")
    account_name: str = strawberry.field(
        description="The account holder's name: 1 to 100 characters, no control characters."
    )


@strawberry.input(description="A withdrawal to a bank account.")
class RequestWithdrawalInput:
    wallet_id: strawberry.ID = strawberry.field(
        description="One of the viewer's wallets (a Wallet global ID; NOT_FOUND otherwise), in a "
        "fiat currency (INVALID_INPUT otherwise) and not frozen (WALLET_FROZEN)."
    )
    amount: Decimal = strawberry.field(
        description="What to pay out, in the wallet's currency; at most its available balance "
        "(INSUFFICIENT_FUNDS) and, before KYC, within the daily cap (LIMIT_EXCEEDED). " + AMOUNT
    )
    bank_account: BankAccountInput = strawberry.field(description="Where the money goes.")
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)


@strawberry.type(description="The answer to requestWithdrawal.")
class RequestWithdrawalPayload:
    transaction: Transaction | None = strawberry.field(
        default=None,
        description="The WITHDRAWAL: PROCESSING, or FAILED when the provider could not take "
        "the payout (userErrors then says why); null when refused outright.",
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.input(
    description="Exactly one of the fields. The recipient's wallet must be in the transfer's "
    "currency: the sending wallet's, or the quote's target currency."
)
class RecipientInput:
    email: str | None = strawberry.field(
        default=None,
        description="The recipient's account email; their wallet in the transfer's currency "
        "receives the money (NOT_FOUND when there is none).",
    )
    phone_number: str | None = strawberry.field(
        default=None,
        description="The recipient's phone number, international format; their wallet in the "
        "transfer's currency receives the money (NOT_FOUND when there is none).",
    )
    wallet_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The recipient's wallet (a Wallet global ID). In another currency it is "
        "QUOTE_REQUIRED, or CURRENCY_MISMATCH when a quote is given.",
    )


@strawberry.input(description="Money to send to someone else.")
class SendMoneyInput:
    from_wallet_id: strawberry.ID = strawberry.field(
        description="The viewer's wallet to send from (a Wallet global ID; NOT_FOUND otherwise); "
        "not frozen (WALLET_FROZEN)."
    )
    to: RecipientInput = strawberry.field(
        description="Who receives it; never the sending wallet itself (INVALID_INPUT)."
    )
    amount: Decimal = strawberry.field(
        description="What leaves fromWalletId, in its currency: at most its available balance "
        "(INSUFFICIENT_FUNDS), before KYC within the daily cap (LIMIT_EXCEEDED), and with a "
        "quote exactly its sourceAmount. " + AMOUNT
    )
    quote_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Required when the recipient's wallet is in another currency. An ACTIVE "
        "quote of the viewer's (a Quote global ID) from fromWalletId's currency into the "
        "recipient's.",
    )
    note: str | None = strawberry.field(
        default=None,
        description="Shown to both sides as the transaction's description; at most 500 "
        "characters, no control characters.",
    )
    idempotency_key: str = strawberry.field(description=IDEMPOTENCY_KEY)


@strawberry.type(description="The answer to sendMoney.")
class SendMoneyPayload:
    transaction: Transaction | None = strawberry.field(
        default=None, description="The COMPLETED TRANSFER; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)


@strawberry.input(description="A staff decision to freeze or unfreeze a wallet.")
class FreezeWalletInput:
    wallet_id: strawberry.ID = strawberry.field(
        description="A customer wallet (a Wallet global ID; NOT_FOUND otherwise)."
    )
    frozen: bool = strawberry.field(description="true freezes the wallet, false unfreezes it.")
    reason: str = strawberry.field(
        description="Why: 1 to 500 characters, kept in the audit log (INVALID_INPUT otherwise)."
    )


@strawberry.type(description="The answer to freezeWallet.")
class FreezeWalletPayload:
    wallet: Wallet | None = strawberry.field(
        default=None, description="The wallet with its new status; null when refused."
    )
    user_errors: list[UserError] = strawberry.field(default_factory=list, description=USER_ERRORS)
