"""Table definitions (SQLAlchemy Core). Alembic migrations are written from these.

Enumerations are ``varchar`` with CHECK constraints rather than PostgreSQL enums, so a new
value is a constraint swap, not an ``ALTER TYPE`` that cannot run in a transaction.
Money is ``NUMERIC(38, 18)``: exact, and wide enough for ETH's 18 decimals.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, INET, JSONB, UUID

from stacklo.domain.models import AccountKind, KycStatus, Role, WalletStatus
from stacklo.domain.money import CurrencyCode

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

MONEY = Numeric(38, 18)


def _one_of(column: str, values: list[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _now() -> Column[object]:
    return Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now())


CURRENCY_VALUES = [c.value for c in CurrencyCode]
TRANSACTION_KINDS = [
    "DEPOSIT",
    "WITHDRAWAL",
    "TRANSFER",
    "EXCHANGE",
    "CRYPTO_BUY",
    "CRYPTO_SELL",
    "CHECKOUT_PAYMENT",
    "INSTALLMENT_REPAYMENT",
    "LATE_FEE",
    "SETTLEMENT",
    "REFUND",
    "ADJUSTMENT",
]
TRANSACTION_STATUSES = ["CREATED", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"]

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("full_name", String(120), nullable=False),
    Column("phone_number", String(16), unique=True),
    Column("password_hash", Text, nullable=False),
    Column("roles", ARRAY(String(16)), nullable=False, server_default=text("'{CUSTOMER}'")),
    Column("kyc_status", String(16), nullable=False, server_default="PENDING"),
    # False once a rejection was final: no more document uploads.
    Column("kyc_may_resubmit", Boolean, nullable=False, server_default=text("true")),
    _now(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_one_of("kyc_status", [k.value for k in KycStatus]), name="kyc_status"),
    CheckConstraint(
        "roles <@ ARRAY[" + ", ".join(f"'{r.value}'" for r in Role) + "]::varchar[]", name="roles"
    ),
    CheckConstraint("email = lower(email)", name="email_lower"),
    Index("ix_users_created_at_id", text("created_at DESC"), text("id DESC")),
    # Trigram indexes for users(search:), where pg_trgm exists (migration 0009).
    *(
        Index(f"ix_users_{c}_trgm", c, postgresql_using="gin", postgresql_ops={c: "gin_trgm_ops"})
        for c in ("email", "full_name", "phone_number")
    ),
)

auth_sessions = Table(
    "auth_sessions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    _now(),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("revoked_reason", String(64)),
    # The device that signed in: a sign-in from one never seen before is notified.
    Column("user_agent", String(256)),
    Index("ix_auth_sessions_live_user", "user_id", postgresql_where=text("revoked_at IS NULL")),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "session_id",
        UUID(as_uuid=True),
        ForeignKey("auth_sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    # SHA-256 of the opaque token: a leaked table cannot be replayed.
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Index("ix_refresh_tokens_session_id", "session_id"),
)

# Every ledger account: customer wallets and the platform's own (fees, provider clearing,
# FX liquidity, BNPL receivables, merchant payables). Platform accounts are sharded
# (``shard``) so that hot ones do not serialise all traffic on one row lock.
wallets = Table(
    "wallets",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="RESTRICT")),
    Column("kind", String(24), nullable=False, server_default="CUSTOMER"),
    Column("currency", String(8), nullable=False),
    Column("shard", SmallInteger, nullable=False, server_default="0"),
    # A merchant payable's merchant (its shards are keyed by merchant, not by kind alone).
    Column("merchant_id", UUID(as_uuid=True), ForeignKey("merchants.id", ondelete="RESTRICT")),
    Column("balance", MONEY, nullable=False, server_default="0"),
    Column("held", MONEY, nullable=False, server_default="0"),
    Column("status", String(8), nullable=False, server_default="ACTIVE"),
    _now(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_one_of("kind", [k.value for k in AccountKind]), name="kind"),
    CheckConstraint(_one_of("currency", CURRENCY_VALUES), name="currency"),
    CheckConstraint(_one_of("status", [s.value for s in WalletStatus]), name="status"),
    CheckConstraint("(kind = 'CUSTOMER') = (user_id IS NOT NULL)", name="owner"),
    CheckConstraint("(kind = 'MERCHANT_PAYABLE') = (merchant_id IS NOT NULL)", name="merchant"),
    # Customer money never goes below zero and never more is held than is there.
    CheckConstraint(
        "kind <> 'CUSTOMER' OR (balance >= 0 AND held >= 0 AND held <= balance)",
        name="customer_non_negative",
    ),
    Index(
        "uq_wallets_user_currency",
        "user_id",
        "currency",
        unique=True,
        postgresql_where=text("kind = 'CUSTOMER'"),
    ),
    Index(
        "uq_wallets_platform_account",
        "kind",
        "currency",
        "shard",
        unique=True,
        postgresql_where=text("kind NOT IN ('CUSTOMER', 'MERCHANT_PAYABLE')"),
    ),
    Index(
        "uq_wallets_merchant_payable",
        "merchant_id",
        "currency",
        "shard",
        unique=True,
        postgresql_where=text("kind = 'MERCHANT_PAYABLE'"),
    ),
)

ledger_transactions = Table(
    "ledger_transactions",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("reference", String(24), nullable=False, unique=True),
    Column("kind", String(24), nullable=False),
    Column("status", String(12), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("fee", MONEY, nullable=False, server_default="0"),
    Column("converted_currency", String(8)),
    Column("converted_amount", MONEY),
    Column("exchange_rate", MONEY),
    Column("description", Text),
    Column("failure_reason", Text),
    Column("initiator_id", UUID(as_uuid=True), ForeignKey("users.id")),
    Column("source_wallet_id", UUID(as_uuid=True), ForeignKey("wallets.id")),
    Column("target_wallet_id", UUID(as_uuid=True), ForeignKey("wallets.id")),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _now(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("completed_at", DateTime(timezone=True)),
    CheckConstraint(_one_of("kind", TRANSACTION_KINDS), name="kind"),
    CheckConstraint(_one_of("status", TRANSACTION_STATUSES), name="status"),
    CheckConstraint("amount > 0 AND fee >= 0", name="amounts"),
    Index("ix_ledger_transactions_source_wallet_id", "source_wallet_id"),
    Index("ix_ledger_transactions_target_wallet_id", "target_wallet_id"),
    # The reconciler's round: deposits and withdrawals still waiting for the provider's word.
    Index(
        "ix_ledger_transactions_in_flight",
        "kind",
        "updated_at",
        postgresql_where=text("status = 'PROCESSING' AND kind IN ('DEPOSIT', 'WITHDRAWAL')"),
    ),
)

transaction_status_changes = Table(
    "transaction_status_changes",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "transaction_id",
        UUID(as_uuid=True),
        ForeignKey("ledger_transactions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("status", String(12), nullable=False),
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_transaction_status_changes_transaction_id", "transaction_id", "id"),
)

# One row per leg. ``amount`` is signed from the account's side (+ credit, - debit); a
# transaction's entries sum to zero per currency. ``balance_after`` is the account's balance
# once this entry is applied: a statement's running balance without a window function.
ledger_entries = Table(
    "ledger_entries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "transaction_id", UUID(as_uuid=True), ForeignKey("ledger_transactions.id"), nullable=False
    ),
    Column("wallet_id", UUID(as_uuid=True), ForeignKey("wallets.id"), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("amount", MONEY, nullable=False),
    Column("balance_after", MONEY, nullable=False),
    _now(),
    CheckConstraint("amount <> 0", name="non_zero"),
    Index("ix_ledger_entries_wallet_id_id", "wallet_id", text("id DESC")),
    Index("ix_ledger_entries_transaction_id", "transaction_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("actor_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")),
    Column("action", String(64), nullable=False),
    Column("target_type", String(32)),
    Column("target_id", String(64)),
    Column("ip_address", INET),
    Column("request_id", String(64)),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _now(),
    Index("ix_audit_events_action_id", "action", text("id DESC")),
    Index("ix_audit_events_actor_id_id", "actor_id", text("id DESC")),
)

Index(
    "ix_ledger_transactions_initiator_created",
    ledger_transactions.c.initiator_id,
    ledger_transactions.c.created_at,
)

# Money-moving mutations: the key, a hash of the input and the result, written in the same
# database transaction as the movement. The primary key makes a concurrent duplicate wait for
# the first to commit (or roll back) before it can decide.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("key", String(128), primary_key=True),
    Column("operation", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("response", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    _now(),
)

# What each user sent and withdrew per currency per UTC day, failed and cancelled ones not
# counted: kept by a trigger on ledger_transactions (migration 0010) for the daily cap.
daily_outgoing = Table(
    "daily_outgoing",
    metadata,
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("currency", String(8), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("amount", MONEY, nullable=False),
)

# Provider webhooks already applied, so a replay changes nothing.
provider_events = Table(
    "provider_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("provider", String(32), nullable=False),
    Column("kind", String(64), nullable=False),
    Column("reference", String(64), nullable=False),
    Column("provider_id", String(64)),
    Column("payload", JSONB, nullable=False),
    Column("outcome", String(32), nullable=False),
    _now(),
    Index(
        "uq_provider_events_provider_kind_reference", "provider", "kind", "reference", unique=True
    ),
)

# The transactional outbox. A row is written in the same database transaction as the change
# it announces. ``position`` is assigned by the relay when it publishes, in publish order, by
# one relay at a time: it is the subscribers' cursor, so an event that committed late (with a
# lower id) still gets a higher position than everything published before it.
outbox_events = Table(
    "outbox_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("topic", String(32), nullable=False),
    Column("aggregate_id", String(64), nullable=False),
    # Users who may see the event; staff see transaction events on the platform channel.
    Column("audience", ARRAY(UUID(as_uuid=True)), nullable=False, server_default=text("'{}'")),
    Column("payload", JSONB, nullable=False),
    _now(),
    Column("position", BigInteger, unique=True),
    Column("published_at", DateTime(timezone=True)),
    Index("ix_outbox_events_unpublished", "id", postgresql_where=text("published_at IS NULL")),
    Index("ix_outbox_events_audience", "audience", postgresql_using="gin"),
)

outbox_state = Table(
    "outbox_state",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    # Events up to this position were pruned: an older cursor can no longer be replayed.
    Column("pruned_through", BigInteger, nullable=False, server_default="0"),
    CheckConstraint("id = 1", name="singleton"),
)

# Every feed reading, one row per direct pair: the rate history. Unconstrained NUMERIC keeps
# a rate's significant digits whatever its magnitude (1 NGN is 0.000000006 BTC).
rate_ticks = Table(
    "rate_ticks",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("base", String(8), nullable=False),
    Column("quote", String(8), nullable=False),
    Column("mid", Numeric, nullable=False),
    Column("source", String(32), nullable=False),
    Column("observed_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(_one_of("base", CURRENCY_VALUES), name="base"),
    CheckConstraint(_one_of("quote", CURRENCY_VALUES), name="quote"),
    CheckConstraint("mid > 0", name="positive"),
    Index("ix_rate_ticks_observed_at", text("observed_at DESC")),
    Index("ix_rate_ticks_pair_observed_at", "base", "quote", text("observed_at DESC")),
)

QUOTE_KINDS = ["EXCHANGE", "CRYPTO_BUY", "CRYPTO_SELL"]

# A locked price. ``used_at``/``transaction_id`` are set in the same database transaction as
# the movement that spends it; the row lock makes a second spender wait, then see it used.
quotes = Table(
    "quotes",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(16), nullable=False),
    Column("source_currency", String(8), nullable=False),
    Column("source_amount", MONEY, nullable=False),
    Column("target_currency", String(8), nullable=False),
    Column("target_amount", MONEY, nullable=False),
    Column("rate", Numeric, nullable=False),
    Column("fee", MONEY, nullable=False),
    Column("mid", Numeric, nullable=False),
    _now(),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("used_at", DateTime(timezone=True)),
    Column("transaction_id", UUID(as_uuid=True), ForeignKey("ledger_transactions.id")),
    CheckConstraint(_one_of("kind", QUOTE_KINDS), name="kind"),
    CheckConstraint(_one_of("source_currency", CURRENCY_VALUES), name="source_currency"),
    CheckConstraint(_one_of("target_currency", CURRENCY_VALUES), name="target_currency"),
    CheckConstraint(
        "source_amount > 0 AND target_amount > 0 AND fee >= 0 AND fee < source_amount "
        "AND rate > 0 AND source_currency <> target_currency",
        name="amounts",
    ),
    CheckConstraint("(used_at IS NULL) = (transaction_id IS NULL)", name="used"),
    Index("ix_quotes_user_id_created_at", "user_id", text("created_at DESC")),
    # One quote pays for one movement, and a movement spends at most one quote.
    Index("uq_quotes_transaction_id", "transaction_id", unique=True),
)

# Operations a client registered ahead of time (`stacklo persisted-queries register`): the
# allowlist production can run with, and the store Apollo's persisted-query hashes resolve
# from first. Keyed by the SHA-256 of the exact text, as Apollo hashes it.
persisted_operations = Table(
    "persisted_operations",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("body", Text, nullable=False),
    Column("name", String(128)),
    _now(),
    CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
)

MERCHANT_STATUSES = ["PENDING_REVIEW", "ACTIVE", "SUSPENDED", "REJECTED"]
CHECKOUT_STATUSES = ["OPEN", "PAID", "EXPIRED", "CANCELLED", "REFUNDED"]
PAYMENT_METHODS = ["WALLET", "INSTALLMENTS"]

# One merchant per user (the unique user_id).
merchants = Table(
    "merchants",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id",
        UUID(as_uuid=True),
        ForeignKey("users.id", ondelete="RESTRICT"),
        nullable=False,
        unique=True,
    ),
    Column("name", String(100), nullable=False),
    Column("category", String(60), nullable=False),
    Column("settlement_currency", String(8), nullable=False),
    Column("status", String(16), nullable=False),
    Column("review_reason", Text),
    _now(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_one_of("status", MERCHANT_STATUSES), name="status"),
    CheckConstraint(_one_of("settlement_currency", CURRENCY_VALUES), name="currency"),
)

checkouts = Table(
    "checkouts",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "merchant_id",
        UUID(as_uuid=True),
        ForeignKey("merchants.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    Column("currency", String(8), nullable=False),
    Column("amount", MONEY, nullable=False),
    # OPEN is stored until the worker writes EXPIRED; reads compare expires_at themselves.
    Column("status", String(12), nullable=False),
    Column("description", Text),
    Column("reference", String(64)),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("payment_method", String(16)),
    Column("payer_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="RESTRICT")),
    Column("payment_transaction_id", UUID(as_uuid=True), ForeignKey("ledger_transactions.id")),
    Column("paid_at", DateTime(timezone=True)),
    Column("fee", MONEY, nullable=False, server_default="0"),
    Column("refunded", MONEY, nullable=False, server_default="0"),
    Column("fee_returned", MONEY, nullable=False, server_default="0"),
    Column("refunded_from_payable", MONEY, nullable=False, server_default="0"),
    Column("settled_at", DateTime(timezone=True)),
    Column("settlement_transaction_id", UUID(as_uuid=True), ForeignKey("ledger_transactions.id")),
    _now(),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_one_of("status", CHECKOUT_STATUSES), name="status"),
    CheckConstraint(_one_of("currency", CURRENCY_VALUES), name="currency"),
    CheckConstraint(
        "payment_method IS NULL OR " + _one_of("payment_method", PAYMENT_METHODS), name="method"
    ),
    CheckConstraint(
        "amount > 0 AND fee >= 0 AND fee <= amount AND refunded >= 0 AND refunded <= amount "
        "AND fee_returned >= 0 AND fee_returned <= fee",
        name="amounts",
    ),
    # Paid exactly when it has its payment; refunded in full exactly when REFUNDED.
    CheckConstraint(
        "(status IN ('PAID', 'REFUNDED')) = (payment_transaction_id IS NOT NULL)", name="paid"
    ),
    CheckConstraint("(status = 'REFUNDED') = (refunded = amount)", name="refunded"),
    # The merchant's own order reference: one checkout each.
    Index(
        "uq_checkouts_merchant_reference",
        "merchant_id",
        "reference",
        unique=True,
        postgresql_where=text("reference IS NOT NULL"),
    ),
    Index("ix_checkouts_merchant_created", "merchant_id", text("created_at DESC"), text("id DESC")),
    Index("ix_checkouts_open_expiry", "expires_at", postgresql_where=text("status = 'OPEN'")),
    # Settlement looks for paid, unsettled sales by merchant and payment time.
    Index(
        "ix_checkouts_unsettled",
        "merchant_id",
        "paid_at",
        postgresql_where=text("paid_at IS NOT NULL AND settled_at IS NULL"),
    ),
)

# A checkout's refunds, one row per REFUND transaction.
checkout_refunds = Table(
    "checkout_refunds",
    metadata,
    Column(
        "transaction_id",
        UUID(as_uuid=True),
        ForeignKey("ledger_transactions.id"),
        primary_key=True,
    ),
    Column(
        "checkout_id",
        UUID(as_uuid=True),
        ForeignKey("checkouts.id", ondelete="RESTRICT"),
        nullable=False,
    ),
    _now(),
    Index("ix_checkout_refunds_checkout_id", "checkout_id", "created_at"),
)

CREDIT_STATUSES = ["NONE", "APPROVED", "DECLINED", "SUSPENDED"]
PLAN_STATUSES = ["ACTIVE", "COMPLETED", "DEFAULTED", "CANCELLED"]
INSTALLMENT_STATUSES = ["SCHEDULED", "PAID", "OVERDUE", "WAIVED"]
INSTALLMENT_PRODUCTS = ["PAY_IN_4", "PAY_IN_3_MONTHLY", "PAY_IN_6_MONTHLY"]

# A user's current credit standing: the latest decision, and a suspension on default.
credit_profiles = Table(
    "credit_profiles",
    metadata,
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("status", String(12), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("credit_limit", MONEY, nullable=False, server_default="0"),
    Column("score", SmallInteger),
    Column("reasons", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("decided_at", DateTime(timezone=True)),
    Column("suspended_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_one_of("status", CREDIT_STATUSES), name="status"),
    CheckConstraint("credit_limit >= 0", name="limit"),
)

# Every decision, with what it was made from and the scorecard version: it can be explained
# later however the scorecard changes.
credit_decisions = Table(
    "credit_decisions",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    Column("status", String(12), nullable=False),
    Column("score", SmallInteger, nullable=False),
    Column("currency", String(8), nullable=False),
    Column("credit_limit", MONEY, nullable=False),
    Column("reasons", JSONB, nullable=False),
    Column("factors", JSONB, nullable=False),
    Column("inputs", JSONB, nullable=False),
    Column("version", String(32), nullable=False),
    Column("decided_at", DateTime(timezone=True), nullable=False),
    CheckConstraint(_one_of("status", CREDIT_STATUSES), name="status"),
    Index("ix_credit_decisions_user_id", "user_id", text("id DESC")),
)

# One plan per checkout (the unique checkout_id): however many payers race, one plan.
installment_plans = Table(
    "installment_plans",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="RESTRICT"), nullable=False
    ),
    Column(
        "checkout_id",
        UUID(as_uuid=True),
        ForeignKey("checkouts.id", ondelete="RESTRICT"),
        nullable=False,
        unique=True,
    ),
    Column("merchant_id", UUID(as_uuid=True), ForeignKey("merchants.id"), nullable=False),
    # Where collections are taken from: the wallet that paid the first installment.
    Column("wallet_id", UUID(as_uuid=True), ForeignKey("wallets.id"), nullable=False),
    Column("product", String(20), nullable=False),
    Column("status", String(12), nullable=False),
    Column("currency", String(8), nullable=False),
    Column("principal", MONEY, nullable=False),
    Column("fee", MONEY, nullable=False, server_default="0"),
    _now(),
    Column("completed_at", DateTime(timezone=True)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_one_of("status", PLAN_STATUSES), name="status"),
    CheckConstraint(_one_of("product", INSTALLMENT_PRODUCTS), name="product"),
    CheckConstraint("principal >= 0 AND fee >= 0", name="amounts"),
    Index("ix_installment_plans_user_created", "user_id", text("created_at DESC"), text("id DESC")),
)

installments = Table(
    "installments",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "plan_id",
        UUID(as_uuid=True),
        ForeignKey("installment_plans.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("sequence", SmallInteger, nullable=False),
    Column("due_date", Date, nullable=False),
    Column("principal", MONEY, nullable=False),
    Column("fee", MONEY, nullable=False, server_default="0"),
    Column("status", String(12), nullable=False),
    Column("late_fee", MONEY, nullable=False, server_default="0"),
    Column("principal_paid", MONEY, nullable=False, server_default="0"),
    Column("fee_paid", MONEY, nullable=False, server_default="0"),
    Column("late_fee_paid", MONEY, nullable=False, server_default="0"),
    Column("paid_at", DateTime(timezone=True)),
    Column("reminded_at", DateTime(timezone=True)),
    CheckConstraint(_one_of("status", INSTALLMENT_STATUSES), name="status"),
    CheckConstraint(
        "principal >= 0 AND fee >= 0 AND late_fee >= 0 AND principal_paid BETWEEN 0 AND principal "
        "AND fee_paid BETWEEN 0 AND fee AND late_fee_paid BETWEEN 0 AND late_fee",
        name="amounts",
    ),
    Index("uq_installments_plan_sequence", "plan_id", "sequence", unique=True),
    # The scheduler looks for what is due, by date.
    Index(
        "ix_installments_open_due",
        "due_date",
        postgresql_where=text("status IN ('SCHEDULED', 'OVERDUE')"),
    ),
)

KYC_DOCUMENT_TYPES = ["PASSPORT", "NATIONAL_ID", "DRIVERS_LICENSE", "UTILITY_BILL", "SELFIE"]
KYC_DOCUMENT_STATUSES = ["UPLOADED", "APPROVED", "REJECTED"]
CHANNELS = ["EMAIL", "SMS"]
DELIVERY_STATUSES = ["PENDING", "SENT", "FAILED"]

# Identity documents: the bytes live in object storage under storage_key; the review's
# user-facing reason and the staff's internal note are kept apart.
kyc_documents = Table(
    "kyc_documents",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    Column("type", String(20), nullable=False),
    Column("file_name", String(255), nullable=False),
    Column("content_type", String(64), nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("storage_key", String(255), nullable=False, unique=True),
    Column("status", String(12), nullable=False),
    Column("reason", Text),
    Column("note", Text),
    Column("may_resubmit", Boolean, nullable=False, server_default=text("true")),
    Column("reviewer_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL")),
    Column("reviewed_at", DateTime(timezone=True)),
    Column("uploaded_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint(_one_of("type", KYC_DOCUMENT_TYPES), name="type"),
    CheckConstraint(_one_of("status", KYC_DOCUMENT_STATUSES), name="status"),
    CheckConstraint("size_bytes > 0", name="size"),
    Index("ix_kyc_documents_user_id", "user_id", "uploaded_at"),
)

# In-app notifications. A notification made from an outbox event carries the event's id: one
# per event, user and kind, however often the notifier reads the event.
notifications = Table(
    "notifications",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    ),
    Column("kind", String(40), nullable=False),
    Column("title", String(200), nullable=False),
    Column("body", Text, nullable=False),
    # What the templates were given: email and SMS copies are rendered from it when sent.
    Column("data", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("event_id", BigInteger),
    Column("read_at", DateTime(timezone=True)),
    _now(),
    Index("uq_notifications_event_user_kind", "event_id", "user_id", "kind", unique=True),
    Index("ix_notifications_user_created", "user_id", text("created_at DESC"), text("id DESC")),
    Index("ix_notifications_unread", "user_id", postgresql_where=text("read_at IS NULL")),
)

# Email and SMS copies of a notification: one row per channel (the dedupe key), retried with
# backoff on temporary failures up to a bound, with the reason it gave up.
notification_deliveries = Table(
    "notification_deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column(
        "notification_id",
        UUID(as_uuid=True),
        ForeignKey("notifications.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("channel", String(8), nullable=False),
    Column("destination", String(254), nullable=False),
    Column("status", String(8), nullable=False),
    Column("attempts", SmallInteger, nullable=False, server_default="0"),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("last_error", Text),
    Column("sent_at", DateTime(timezone=True)),
    CheckConstraint(_one_of("channel", CHANNELS), name="channel"),
    CheckConstraint(_one_of("status", DELIVERY_STATUSES), name="status"),
    Index("uq_notification_deliveries_channel", "notification_id", "channel", unique=True),
    Index(
        "ix_notification_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'PENDING'"),
    ),
)

notification_preferences = Table(
    "notification_preferences",
    metadata,
    Column(
        "user_id", UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("email", Boolean, nullable=False, server_default=text("true")),
    Column("sms", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# How far each outbox reader has got (the notifier), by outbox position.
outbox_readers = Table(
    "outbox_readers",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", BigInteger, nullable=False, server_default="0"),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# platformStats counts the last minute, hour and day of transactions.
Index("ix_ledger_transactions_created_at", ledger_transactions.c.created_at)
