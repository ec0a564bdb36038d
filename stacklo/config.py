"""Settings from the environment (``STACKLO_*``), with embedded defaults when nothing is set.

With no database URL the server runs on an embedded PostgreSQL (the ``pgserver`` wheel) in
``data_dir``; the JWT secret is then generated once and kept in that folder so tokens
survive restarts. ``STACKLO_ENV=production`` refuses to start on anything made for a laptop:
the embedded database, a generated JWT secret, the sandbox payment provider or the sandbox
rate feed (``production_problems`` names each). Staging may opt into the sandbox explicitly
(``STACKLO_ALLOW_SANDBOX_IN_PRODUCTION``), and the server then says so loudly at start.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from datetime import timedelta
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from limits import RateLimitItem, parse
from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from stacklo.domain.fx import (
    DEFAULT_FEE_BPS,
    DEFAULT_MAX_AMOUNT,
    DEFAULT_MIN_AMOUNT,
    Pricing,
    QuoteKind,
)
from stacklo.domain.money import CurrencyCode
from stacklo.domain.plans import LendingTerms
from stacklo.domain.spending import DEFAULT_UNVERIFIED_DAILY

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Where front-end development servers usually run (Create React App and Next.js, Vite, Vue
# CLI and webpack, Angular), on localhost and 127.0.0.1.
LOCAL_DEVELOPMENT_ORIGINS = tuple(
    f"http://{host}:{port}"
    for host in ("localhost", "127.0.0.1")
    for port in (3000, 5173, 8080, 4200)
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="STACKLO_", extra="ignore")

    env: Literal["development", "test", "production"] = "development"
    database_url: str | None = Field(
        default=None, validation_alias=AliasChoices("STACKLO_DATABASE_URL", "DATABASE_URL")
    )
    redis_url: str | None = Field(
        default=None, validation_alias=AliasChoices("STACKLO_REDIS_URL", "REDIS_URL")
    )
    storage_url: str | None = Field(
        default=None, validation_alias=AliasChoices("STACKLO_STORAGE_URL", "STORAGE_URL")
    )
    data_dir: Path = Path(".stacklo")
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)

    jwt_secret: str | None = Field(default=None, min_length=32)
    jwt_algorithm: Literal["HS256", "HS384", "HS512"] = "HS256"
    jwt_issuer: str = "stacklo"
    jwt_audience: str = "stacklo-api"
    access_token_ttl_seconds: int = Field(default=900, ge=5, le=86_400)
    refresh_token_ttl_seconds: int = Field(default=30 * 86_400, ge=300)
    # How long a live session's viewer is remembered between requests (0: ask every time).
    viewer_cache_seconds: float = Field(default=10.0, ge=0, le=60)

    # Argon2id cost. The defaults are the RFC 9106 "second recommended" profile (64 MiB,
    # t=3); tests lower them because they hash hundreds of passwords.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65_536, ge=8)
    argon2_parallelism: int = Field(default=4, ge=1)

    # Payments: Paystack when a secret key is set, the built-in sandbox otherwise.
    paystack_secret_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("STACKLO_PAYSTACK_SECRET_KEY", "PAYSTACK_SECRET_KEY"),
    )
    paystack_base_url: str = "https://api.paystack.co"
    paystack_callback_url: str | None = None
    # What the Paystack adapter waits for, and when its circuit breaker opens and for how long.
    paystack_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    paystack_read_timeout_seconds: float = Field(default=10.0, gt=0)
    paystack_breaker_failures: int = Field(default=5, ge=1)
    paystack_breaker_open_seconds: float = Field(default=30.0, gt=0)
    # The reconciler: how old a deposit without the provider's word is before it is looked up,
    # and before an unpaid one is FAILED as never completed.
    deposit_lookup_after_seconds: float = Field(default=120.0, gt=0)
    deposit_expiry_seconds: float = Field(default=86400.0, gt=0)
    # Daily send + withdraw limit per currency while KYC is not VERIFIED (JSON object).
    unverified_daily_limits: dict[CurrencyCode, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_UNVERIFIED_DAILY)
    )

    # Real time. Fan-out goes through Redis when REDIS_URL is set; in-process otherwise.
    broadcast_url_override: str | None = Field(
        default=None, validation_alias=AliasChoices("STACKLO_BROADCAST_URL")
    )
    run_worker_in_process: bool | None = Field(
        default=None, description="Run the relay inside `serve` (default: only when embedded)."
    )
    ws_init_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    subscription_buffer: int = Field(default=256, ge=1, le=100_000)
    subscriptions_per_user: int = Field(default=20, ge=1, le=1000)
    outbox_retention_days: int = Field(default=7, ge=1)
    relay_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # permessage-deflate keeps a zlib context per socket (about 40 KB) for small JSON frames.
    ws_compression: bool = False

    # Rates and quotes. The feed runs in `stacklo worker` (in `serve` when embedded).
    rate_feed: Literal["sandbox", "coinbase"] = "sandbox"
    rate_feed_url: str = "https://api.coinbase.com"
    rate_feed_seed: int = 7
    rate_tick_seconds: float = Field(default=2.0, ge=0.05, le=3600)
    rate_max_age_seconds: float = Field(default=60.0, gt=0)
    rate_history_days: int = Field(default=30, ge=1)
    quote_ttl_seconds: float = Field(default=30.0, gt=0, le=3600)
    fx_spread_bps_fiat: Decimal = Field(default=Decimal(50), ge=0, lt=5000)
    fx_spread_bps_crypto: Decimal = Field(default=Decimal(100), ge=0, lt=5000)
    fx_fee_bps: dict[QuoteKind, Decimal] = Field(default_factory=lambda: dict(DEFAULT_FEE_BPS))
    fx_min_amounts: dict[CurrencyCode, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_MIN_AMOUNT)
    )
    fx_max_amounts: dict[CurrencyCode, Decimal] = Field(
        default_factory=lambda: dict(DEFAULT_MAX_AMOUNT)
    )

    # Merchants: the discount taken from each sale (basis points), how long a checkout stays
    # open, how old a sale is before it settles to the merchant's wallet, and how often the
    # worker expires checkouts and settles.
    merchant_fee_bps: Decimal = Field(default=Decimal(150), ge=0, lt=10_000)
    checkout_ttl_seconds: int = Field(default=1800, ge=60, le=86_400)
    settlement_delay_seconds: int = Field(default=86_400, ge=0)
    scheduler_interval_seconds: float = Field(default=30.0, gt=0, le=3600)

    # Object storage for KYC documents: S3 when storage_url is s3://bucket?region=..., a
    # folder under data_dir otherwise. Keys from here or the usual AWS chain.
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    kyc_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=100 * 1024 * 1024)

    # Notifications: email through SMTP when smtp_host is set (logged otherwise), SMS through
    # an HTTP gateway when sms_url is set (logged otherwise). Failed deliveries are retried with
    # backoff up to notification_max_attempts.
    smtp_host: str | None = None
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_tls: Literal["none", "starttls", "tls"] = "starttls"
    smtp_sender: str = "Stacklo <no-reply@stacklo.invalid>"
    sms_url: str | None = None
    sms_api_key: str | None = None
    sms_sender_id: str = "Stacklo"
    notifier_interval_seconds: float = Field(default=1.0, gt=0, le=60)
    notification_max_attempts: int = Field(default=6, ge=1, le=20)

    # Credit and installments. The scorecard is a data file (the packaged one unless a path
    # is given); applying again waits credit_reapply_seconds after a decision.
    credit_scorecard: Path | None = None
    credit_reapply_seconds: int = Field(default=7 * 86_400, ge=0)
    bnpl_fees_bps: Decimal = Field(default=Decimal(500), ge=0, lt=10_000)
    bnpl_min_amounts: dict[CurrencyCode, Decimal] = Field(
        default_factory=lambda: {
            CurrencyCode.NGN: Decimal(5_000),
            CurrencyCode.USD: Decimal(10),
            CurrencyCode.GBP: Decimal(10),
            CurrencyCode.EUR: Decimal(10),
        }
    )
    bnpl_max_amounts: dict[CurrencyCode, Decimal] = Field(
        default_factory=lambda: {
            CurrencyCode.NGN: Decimal(2_000_000),
            CurrencyCode.USD: Decimal(5_000),
            CurrencyCode.GBP: Decimal(4_000),
            CurrencyCode.EUR: Decimal(4_500),
        }
    )
    bnpl_grace_days: int = Field(default=3, ge=0, le=60)
    bnpl_default_days: int = Field(default=60, ge=1, le=365)
    bnpl_reminder_days: int = Field(default=3, ge=0, le=30)
    bnpl_late_fee_flat: dict[CurrencyCode, Decimal] = Field(
        default_factory=lambda: {
            CurrencyCode.NGN: Decimal(1_000),
            CurrencyCode.USD: Decimal(5),
            CurrencyCode.GBP: Decimal(4),
            CurrencyCode.EUR: Decimal(5),
        }
    )
    bnpl_late_fee_bps: Decimal = Field(default=Decimal(0), ge=0, lt=10_000)
    bnpl_late_fee_cap_bps: Decimal = Field(default=Decimal(1_000), ge=0, le=10_000)
    bnpl_late_fee_plan_cap_bps: Decimal = Field(default=Decimal(2_500), ge=0, le=10_000)

    def lending(self) -> LendingTerms:
        return LendingTerms(
            fee_bps=self.bnpl_fees_bps,
            min_amount=dict(self.bnpl_min_amounts),
            max_amount=dict(self.bnpl_max_amounts),
            grace_days=self.bnpl_grace_days,
            default_days=self.bnpl_default_days,
            reminder_days=self.bnpl_reminder_days,
            late_fee_flat=dict(self.bnpl_late_fee_flat),
            late_fee_bps=self.bnpl_late_fee_bps,
            late_fee_cap_bps=self.bnpl_late_fee_cap_bps,
            late_fee_plan_cap_bps=self.bnpl_late_fee_plan_cap_bps,
        )

    # Production refuses the sandbox payment provider and rate feed unless this is set
    # (staging): with it, anyone can mint sandbox money.
    allow_sandbox_in_production: bool = False

    # What one operation may ask for, checked before it runs (stacklo/schema/limits.py); its
    # text's length is checked before it is even parsed.
    max_query_chars: int = Field(default=20_000, ge=100, le=10_000_000)
    max_query_tokens: int = Field(default=2000, ge=50, le=100_000)
    max_query_depth: int = Field(default=10, ge=2, le=100)
    max_query_aliases: int = Field(default=30, ge=0, le=10_000)
    # Field selections, through fragments: validation costs about 0.1 ms a field.
    max_query_fields: int = Field(default=300, ge=10, le=100_000)
    max_query_cost: int = Field(default=2000, ge=10, le=10_000_000)
    # Database connections one request may hold at once, so no request can take the pool.
    db_connections_per_request: int = Field(default=2, ge=1, le=50)
    # Bytes a request body may have: GraphQL JSON and webhooks; multipart uploads their own.
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    max_upload_bytes: int = Field(default=11 * 1024 * 1024, ge=1024)
    # Responses at least this large are gzipped when the client accepts it.
    gzip_min_bytes: int = Field(default=1024, ge=0)
    # Schema introspection and GraphiQL: public, staff only, or off. Default: public, except
    # in production (staff only, and no GraphiQL page).
    introspection: Literal["public", "staff", "off"] | None = None
    graphiql: bool | None = None
    # /metrics: with a token, only `Authorization: Bearer <token>` reads it; in production it
    # is not served at all without one.
    metrics_token: str | None = Field(default=None, min_length=16)

    # Authentication throttles (limits' notation, e.g. "20/minute"): every sign-up, log-in and
    # password change per client address; failed log-ins and password checks per account.
    auth_attempts_per_address: Annotated[RateLimitItem, NoDecode] = Field(
        default_factory=lambda: parse("20/minute")
    )
    auth_failures_per_account: Annotated[RateLimitItem, NoDecode] = Field(
        default_factory=lambda: parse("10/15minutes")
    )
    # Argon2 hashes at once (each holds argon2_memory_kib) and how many may queue for a turn.
    password_hash_concurrency: int = Field(default=2, ge=1, le=64)
    password_hash_queue: int = Field(default=32, ge=0, le=10_000)

    # WebSockets: in-flight operations per socket, open sockets per client address (per
    # process), and how long a socket that is not signed in may sit without a subscription.
    ws_operations_per_socket: int = Field(default=25, ge=1, le=1000)
    ws_sockets_per_address: int = Field(default=50, ge=1, le=100_000)
    ws_idle_anonymous_seconds: float = Field(default=30.0, gt=0, le=3600)

    # Browser apps on these origins may call the API (CORS) and open sockets (the WebSocket
    # Origin check); comma-separated, e.g. https://app.example.com. Default: the usual local
    # front-end development servers, except in production (none).
    cors_origins: Annotated[list[str] | None, NoDecode] = None

    # Cost budgets (stacklo/domain/budget.py): each operation takes its requested cost from
    # its caller's bucket (the user's; the client address's when anonymous), which refills at
    # a steady rate; each mutation that moves money also takes a point from a smaller bucket.
    cost_bucket_size: int = Field(default=5000, ge=10)
    cost_restore_per_second: float = Field(default=100.0, gt=0)
    money_bucket_size: int = Field(default=10, ge=1)
    money_restore_per_second: float = Field(default=0.2, gt=0)

    # Persisted queries: "apq" runs any operation and also accepts Apollo's automatic
    # persisted queries (texts kept apq_ttl_seconds, in Redis when set); "allowlist" runs only
    # operations registered with `stacklo persisted-queries register`.
    persisted_queries: Literal["apq", "allowlist"] = "apq"
    apq_ttl_seconds: int = Field(default=7 * 86_400, ge=60)

    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    log_level: str = "INFO"
    log_json: bool = True
    max_page_size: int = 100
    default_page_size: int = 20

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [
                ipaddress.ip_network(p.strip(), strict=False) for p in value.split(",") if p.strip()
            ]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @field_validator("auth_attempts_per_address", "auth_failures_per_account", mode="before")
    @classmethod
    def _rate(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return parse(value)
            except ValueError:
                raise ValueError(f"not a rate such as 20/minute: {value!r}") from None
        return value

    @field_validator("database_url")
    @classmethod
    def _asyncpg_driver(cls, value: str | None) -> str | None:
        # Accept the plain libpq form operators paste, but always talk asyncpg.
        if value and value.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + value.split("://", 1)[1]
        return value

    @field_validator("fx_fee_bps")
    @classmethod
    def _fees_below_100_percent(cls, value: dict[QuoteKind, Decimal]) -> dict[QuoteKind, Decimal]:
        if any(not 0 <= v < 5000 for v in value.values()):
            raise ValueError("fees are 0 to 4999 basis points")
        return value

    @model_validator(mode="after")
    def _bucket_holds_the_largest_operation(self) -> Settings:
        if self.cost_bucket_size < self.max_query_cost:
            raise ValueError(
                "STACKLO_COST_BUCKET_SIZE must be at least STACKLO_MAX_QUERY_COST, or an "
                "operation within the cost limit could never run"
            )
        return self

    def pricing(self) -> Pricing:
        return Pricing(
            spread_bps_fiat=self.fx_spread_bps_fiat,
            spread_bps_crypto=self.fx_spread_bps_crypto,
            fee_bps={**DEFAULT_FEE_BPS, **self.fx_fee_bps},
            min_amount={**DEFAULT_MIN_AMOUNT, **self.fx_min_amounts},
            max_amount={**DEFAULT_MAX_AMOUNT, **self.fx_max_amounts},
            max_age=timedelta(seconds=self.rate_max_age_seconds),
            ttl=timedelta(seconds=self.quote_ttl_seconds),
        )

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def sandbox_payments(self) -> bool:
        return not self.paystack_secret_key

    @property
    def introspection_policy(self) -> Literal["public", "staff", "off"]:
        if self.introspection is not None:
            return self.introspection
        return "staff" if self.production else "public"

    @property
    def allowed_origins(self) -> list[str]:
        if self.cors_origins is not None:
            return self.cors_origins
        return [] if self.production else list(LOCAL_DEVELOPMENT_ORIGINS)

    @property
    def graphiql_enabled(self) -> bool:
        return self.graphiql if self.graphiql is not None else not self.production

    def production_problems(self) -> list[str]:
        """Why this configuration must not serve production traffic (empty: it may)."""
        if not self.production:
            return []
        problems = []
        if self.database_url is None:
            problems.append("set DATABASE_URL: production never runs the embedded database")
        if not self.jwt_secret:
            problems.append("set STACKLO_JWT_SECRET (at least 32 characters)")
        if not self.allow_sandbox_in_production:
            if self.sandbox_payments:
                problems.append(
                    "set PAYSTACK_SECRET_KEY: the sandbox payment provider would let anyone "
                    "mint money (STACKLO_ALLOW_SANDBOX_IN_PRODUCTION=true allows it for staging)"
                )
            if self.rate_feed == "sandbox":
                problems.append(
                    "set STACKLO_RATE_FEED=coinbase: the sandbox rate feed invents prices "
                    "(STACKLO_ALLOW_SANDBOX_IN_PRODUCTION=true allows it for staging)"
                )
        return problems

    def sandbox_warnings(self) -> list[str]:
        """Sandbox parts serving a production configuration by explicit opt-in."""
        if not (self.production and self.allow_sandbox_in_production):
            return []
        parts = []
        if self.sandbox_payments:
            parts.append("the sandbox payment provider (anyone can mint money)")
        if self.rate_feed == "sandbox":
            parts.append("the sandbox rate feed (invented prices)")
        return parts

    @property
    def worker_in_process(self) -> bool:
        return self.embedded if self.run_worker_in_process is None else self.run_worker_in_process

    @property
    def broadcast_url(self) -> str:
        return self.redis_url or self.broadcast_url_override or "memory://"

    @cached_property
    def secret(self) -> str:
        """The JWT signing key: configured, or generated once per embedded data folder."""
        if self.jwt_secret:
            return self.jwt_secret
        if self.env == "production":
            raise RuntimeError("STACKLO_JWT_SECRET must be set in production")
        path = self.data_dir / "jwt-secret"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        value = secrets.token_urlsafe(48)
        path.write_text(value)
        path.chmod(0o600)
        return value

    @property
    def sandbox_secret(self) -> str:
        """Signs sandbox webhooks; derived from the JWT key so every worker agrees on it."""
        return hmac.new(
            self.secret.encode(), b"stacklo-sandbox-webhooks", hashlib.sha256
        ).hexdigest()

    def is_trusted_proxy(self, host: str | None) -> bool:
        if not host or not self.trusted_proxies:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.trusted_proxies)
