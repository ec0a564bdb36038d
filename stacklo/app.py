"""create_app(settings) -> Starlette: assembles the routes, the guards and the lifespan that owns
the engine, the broadcast connection and the background jobs. The rules live elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.types import Scope
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from stacklo import graphiql
from stacklo.auth.passwords import Argon2Hasher
from stacklo.auth.rbac import Authorizer
from stacklo.auth.throttle import AuthThrottle
from stacklo.auth.tokens import Authenticator, JwtTokens, ViewerCache
from stacklo.config import Settings
from stacklo.data.buckets import SharedBuckets
from stacklo.data.db import create_engine, migrate, start_embedded
from stacklo.data.fx import MemoryRateCache, RedisRateCache
from stacklo.data.outbox import (
    NOTIFIER_LOCK,
    RATE_FEED_LOCK,
    SCHEDULER_LOCK,
    OutboxBell,
    RelayConnection,
)
from stacklo.data.persisted import MemoryQueryCache, QueryCache, RedisQueryCache, Registered
from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.auth import AuthService
from stacklo.domain.budget import Bucket, Budget
from stacklo.domain.checkouts import Checkouts
from stacklo.domain.collection import Collection
from stacklo.domain.conversions import Conversions
from stacklo.domain.credit import load_scorecard
from stacklo.domain.credit_applications import CreditApplications
from stacklo.domain.funding import Funding
from stacklo.domain.kyc import Kyc
from stacklo.domain.kyc_documents import KycDocuments
from stacklo.domain.merchants import Merchants
from stacklo.domain.notifications import Notifications
from stacklo.domain.plans import Plans
from stacklo.domain.platform import Platform
from stacklo.domain.ports import (
    EmailSender,
    ObjectStorage,
    PaymentProvider,
    RateCache,
    RateFeed,
    SmsSender,
    UnitOfWorkFactory,
)
from stacklo.domain.quotes import Quotes
from stacklo.domain.rates import Rates
from stacklo.domain.settlement import Settlement
from stacklo.domain.spending import DailyLimits
from stacklo.domain.transfers import Transfers
from stacklo.domain.visibility import Visibility
from stacklo.domain.wallets import Wallets
from stacklo.integrations.email import LogEmailSender, SmtpSender
from stacklo.integrations.filetypes import sniff
from stacklo.integrations.paystack import PaystackProvider
from stacklo.integrations.rates import CoinbaseRateFeed, SandboxRateFeed
from stacklo.integrations.sandbox import SandboxProvider
from stacklo.integrations.sms import HttpSmsSender, LogSmsSender
from stacklo.integrations.storage import LocalStorage, build_storage
from stacklo.observability import (
    RECONCILED,
    RequestContextMiddleware,
    configure_logging,
    log,
    report_unexpected,
    settle_heap,
)
from stacklo.ops import ops_routes
from stacklo.realtime.broadcast import Fanout, make_broadcast
from stacklo.realtime.feed import RateTicker
from stacklo.realtime.leader import run_as_leader
from stacklo.realtime.notifier import Notifier
from stacklo.realtime.relay import Relay
from stacklo.realtime.sessions import SessionGuard
from stacklo.realtime.streams import Streams
from stacklo.schema.context import Services
from stacklo.schema.errors import UNAVAILABLE, UNAVAILABLE_RETRY_AFTER, unavailable
from stacklo.web.endpoint import GraphQLApp, error_response
from stacklo.web.files import files_routes
from stacklo.web.guards import BodyLimit, SecurityHeaders
from stacklo.web.persisted import PersistedQueries
from stacklo.web.routes import WEBHOOK_MAX_BYTES, operations_routes, webhook_routes


def utcnow() -> datetime:
    return datetime.now(UTC)


def build_provider(settings: Settings) -> PaymentProvider:
    if settings.paystack_secret_key:
        return PaystackProvider(
            settings.paystack_secret_key,
            base_url=settings.paystack_base_url,
            callback_url=settings.paystack_callback_url,
            connect_timeout=settings.paystack_connect_timeout_seconds,
            read_timeout=settings.paystack_read_timeout_seconds,
            failure_threshold=settings.paystack_breaker_failures,
            open_seconds=settings.paystack_breaker_open_seconds,
        )
    return SandboxProvider(settings.sandbox_secret)


def build_funding(
    settings: Settings,
    uow: UnitOfWorkFactory,
    provider: PaymentProvider,
    limits: DailyLimits | None = None,
) -> Funding:
    return Funding(
        uow,
        utcnow,
        provider,
        limits or DailyLimits(settings.unverified_daily_limits, utcnow),
        deposit_lookup_after=timedelta(seconds=settings.deposit_lookup_after_seconds),
        deposit_expiry=timedelta(seconds=settings.deposit_expiry_seconds),
    )


def build_rate_cache(settings: Settings) -> RateCache:
    if settings.redis_url:
        return RedisRateCache(settings.redis_url, ttl_seconds=settings.rate_max_age_seconds)
    return MemoryRateCache(ttl_seconds=min(1.0, settings.rate_tick_seconds))


def build_rates(settings: Settings, uow: UnitOfWorkFactory) -> Rates:
    return Rates(uow, settings.pricing(), build_rate_cache(settings))


def build_rate_feed(settings: Settings) -> RateFeed:
    if settings.rate_feed == "coinbase":
        return CoinbaseRateFeed(settings.rate_feed_url)
    return SandboxRateFeed(seed=settings.rate_feed_seed)


async def run_jobs(
    settings: Settings,
    engine: Any,
    broadcast: Fanout,
    rates: Rates,
    stop: asyncio.Event,
    bell: OutboxBell,
    provider: PaymentProvider | None = None,
) -> None:
    """What `stacklo worker` runs (and `serve` in-process when embedded): the outbox relay, the
    rate ticker, the scheduler and the notifier, each leading through its own advisory lock,
    until ``stop`` is set. The jobs' commits ring ``bell``; the relay's own do not (it would
    wake itself)."""
    relay = Relay(
        SqlUnitOfWorkFactory(engine),
        broadcast,
        poll_seconds=settings.relay_poll_seconds,
        retention=timedelta(days=settings.outbox_retention_days),
    )
    feed = build_rate_feed(settings)
    ticker = RateTicker(
        feed,
        rates,
        utcnow,
        interval_seconds=settings.rate_tick_seconds,
        history=timedelta(days=settings.rate_history_days),
    )
    uow = SqlUnitOfWorkFactory(engine)
    uow.committed = bell.ring
    checkouts = build_checkouts(settings, uow)
    settlement = Settlement(uow, utcnow, timedelta(seconds=settings.settlement_delay_seconds))
    collection = Collection(uow, utcnow, settings.lending())
    payouts = provider or build_provider(settings)
    funding = build_funding(settings, uow, payouts)
    email, sms = build_senders(settings)
    notifier = Notifier(uow, utcnow, email, sms, max_attempts=settings.notification_max_attempts)

    async def scheduled() -> None:
        expired = await checkouts.expire()
        settled = await settlement.run()
        collected = await collection.run()
        # Last: a provider that is slow to answer holds up nothing else.
        paid_out = await funding.reconcile_withdrawals()
        paid_in = await funding.reconcile_deposits()
        RECONCILED.labels("withdrawal").inc(paid_out)
        RECONCILED.labels("deposit").inc(paid_in)
        if expired or settled or collected or paid_out or paid_in:
            log.info(
                "scheduled",
                checkouts_expired=expired,
                merchants_settled=settled,
                plans_changed=collected,
                withdrawals_settled=paid_out,
                deposits_settled=paid_in,
            )

    try:
        await asyncio.gather(
            relay.run(stop, RelayConnection(engine)),
            ticker.run(stop, RelayConnection(engine, RATE_FEED_LOCK, listen=None)),
            run_as_leader(
                "scheduler",
                RelayConnection(engine, SCHEDULER_LOCK, listen=None),
                stop,
                settings.scheduler_interval_seconds,
                scheduled,
            ),
            run_as_leader(
                "notifier",
                RelayConnection(engine, NOTIFIER_LOCK, listen=None),
                stop,
                settings.notifier_interval_seconds,
                notifier.run_once,
            ),
        )
    finally:
        if isinstance(feed, CoinbaseRateFeed):
            await feed.aclose()
        if provider is None and isinstance(payouts, PaystackProvider):
            await payouts.aclose()


def build_senders(settings: Settings) -> tuple[EmailSender, SmsSender]:
    """SMTP and the SMS gateway when configured; the log otherwise (embedded default)."""
    email: EmailSender = LogEmailSender()
    if settings.smtp_host:
        email = SmtpSender(
            settings.smtp_host,
            settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            sender=settings.smtp_sender,
        )
    sms: SmsSender = LogSmsSender()
    if settings.sms_url and settings.sms_api_key:
        sms = HttpSmsSender(settings.sms_url, settings.sms_api_key, settings.sms_sender_id)
    return email, sms


def build_services(
    settings: Settings,
    engine: Any,
    provider: PaymentProvider | None = None,
    broadcast: Fanout | None = None,
    storage: ObjectStorage | None = None,
    bell: OutboxBell | None = None,
) -> Services:
    uow = SqlUnitOfWorkFactory(engine)
    if bell is not None:
        uow.committed = bell.ring
    tokens = JwtTokens(
        settings.secret,
        settings.jwt_algorithm,
        settings.jwt_issuer,
        settings.jwt_audience,
        timedelta(seconds=settings.access_token_ttl_seconds),
    )
    hasher = Argon2Hasher(
        settings.argon2_time_cost,
        settings.argon2_memory_kib,
        settings.argon2_parallelism,
        concurrency=settings.password_hash_concurrency,
        queue=settings.password_hash_queue,
    )
    limits = DailyLimits(settings.unverified_daily_limits, utcnow)
    rates = build_rates(settings, uow)
    authenticator = Authenticator(tokens, uow, utcnow, ViewerCache(settings.viewer_cache_seconds))
    uow.after_commit = authenticator.cache.forget_changed
    return Services(
        settings=settings,
        uow=uow,
        clock=utcnow,
        visibility=Visibility(Authorizer()),
        auth=AuthService(
            uow,
            hasher,
            tokens,
            utcnow,
            timedelta(seconds=settings.refresh_token_ttl_seconds),
        ),
        authenticator=authenticator,
        throttle=AuthThrottle(
            settings.redis_url,
            settings.auth_attempts_per_address,
            settings.auth_failures_per_account,
        ),
        budget=Budget(
            SharedBuckets(settings.redis_url),
            cost=Bucket("cost", settings.cost_bucket_size, settings.cost_restore_per_second),
            money=Bucket("money", settings.money_bucket_size, settings.money_restore_per_second),
        ),
        kyc=Kyc(uow, utcnow),
        kyc_documents=KycDocuments(
            uow, utcnow, storage or build_storage(settings), sniff, settings.kyc_max_bytes
        ),
        wallets=Wallets(uow, utcnow),
        transfers=Transfers(uow, utcnow, limits),
        funding=build_funding(settings, uow, provider or build_provider(settings), limits),
        rates=rates,
        quotes=Quotes(uow, utcnow, rates),
        conversions=Conversions(uow, utcnow),
        streams=Streams(
            broadcast or make_broadcast("memory://"),
            uow,
            buffer=settings.subscription_buffer,
            per_user=settings.subscriptions_per_user,
        ),
        sessions=SessionGuard(uow, utcnow, forget=authenticator.cache.forget_changed),
        merchants=Merchants(uow, utcnow),
        checkouts=build_checkouts(settings, uow),
        plans=Plans(uow, utcnow, settings.lending()),
        credit=CreditApplications(
            uow,
            utcnow,
            load_scorecard(settings.credit_scorecard),
            timedelta(seconds=settings.credit_reapply_seconds),
        ),
        platform=Platform(uow, utcnow),
        notifications=Notifications(uow, utcnow),
    )


def build_checkouts(settings: Settings, uow: UnitOfWorkFactory) -> Checkouts:
    return Checkouts(
        uow,
        utcnow,
        fee_bps=settings.merchant_fee_bps,
        ttl=timedelta(seconds=settings.checkout_ttl_seconds),
        plans=Plans(uow, utcnow, settings.lending()),
    )


def build_persisted(settings: Settings, engine: AsyncEngine) -> PersistedQueries:
    """Registered operations in PostgreSQL; Apollo's automatic ones in Redis (shared by every
    instance) when there is one, in this process's memory otherwise."""
    ttl = settings.apq_ttl_seconds
    cache: QueryCache = (
        RedisQueryCache(settings.redis_url, ttl) if settings.redis_url else MemoryQueryCache(ttl)
    )
    return PersistedQueries(settings.persisted_queries, Registered(engine), cache)


class ConfigurationError(RuntimeError):
    """The settings must not serve traffic (e.g. sandbox parts in production)."""


def check_configuration(settings: Settings) -> None:
    """Refuse production on laptop parts; say loudly which sandbox parts staging opted into."""
    problems = settings.production_problems()
    if problems:
        raise ConfigurationError("production refuses to start: " + "; ".join(problems))
    for part in settings.sandbox_warnings():
        log.warning(
            "sandbox_in_production", part=part, setting="STACKLO_ALLOW_SANDBOX_IN_PRODUCTION"
        )


# What a browser app may send and read across origins.
CORS_REQUEST_HEADERS = [
    "authorization",
    "content-type",
    "x-request-id",
    "apollo-require-preflight",
    "x-apollo-operation-name",
    "graphql-preflight",
    "apollographql-client-name",
    "apollographql-client-version",
]
CORS_RESPONSE_HEADERS = ["x-request-id", "ratelimit", "ratelimit-policy", "retry-after"]


class Runtime:
    """What the lifespan starts and stops: the database engine, the broadcast connection, the
    services, and the background jobs (the session guard; the relay and rate feed when this
    process runs them)."""

    def __init__(self, settings: Settings, provider: PaymentProvider):
        self.settings = settings
        self.provider = provider
        # Built with the app: the local store's download route needs it before the lifespan.
        self.storage = build_storage(settings)
        self._services: Services | None = None
        self._persisted: PersistedQueries | None = None

    def services(self) -> Services:
        assert self._services is not None, "the lifespan has not started"
        return self._services

    def persisted(self) -> PersistedQueries:
        assert self._persisted is not None, "the lifespan has not started"
        return self._persisted

    @asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        settings = self.settings
        engine = create_engine(
            await self._database_url(),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
        )
        broadcast = make_broadcast(settings.broadcast_url)
        await broadcast.connect()
        bell = OutboxBell(engine)
        self._services = built = build_services(
            settings, engine, self.provider, broadcast, self.storage, bell
        )
        self._persisted = build_persisted(settings, engine)
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(built.sessions.run(built.streams, stop)),
            asyncio.create_task(bell.run(stop)),
        ]
        if settings.worker_in_process:
            tasks.append(
                asyncio.create_task(
                    run_jobs(settings, engine, broadcast, built.rates, stop, bell, self.provider)
                )
            )
        settle_heap()
        log.info("started", embedded=settings.embedded, env=settings.env)
        try:
            yield {"engine": engine, "services": built}
        finally:
            stop.set()
            for task in tasks:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, timeout=5)
            await broadcast.disconnect()
            if isinstance(self.provider, PaystackProvider):
                await self.provider.aclose()
            await self.storage.aclose()
            await engine.dispose()

    async def _database_url(self) -> str:
        if self.settings.database_url is not None:
            return self.settings.database_url
        # Embedded default: one command is a complete system.
        url = await anyio.to_thread.run_sync(start_embedded, self.settings.data_dir)
        await anyio.to_thread.run_sync(migrate, url)
        return url


def create_app(settings: Settings | None = None) -> Starlette:
    """Assemble the application: the GraphQL endpoint, the other routes, the guards every
    request passes (outermost last), and the lifespan."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    check_configuration(settings)
    runtime = Runtime(settings, build_provider(settings))
    graphql_app = GraphQLApp(settings, runtime.services, runtime.persisted)
    app = Starlette(
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
            Mount(graphiql.ASSETS_PATH, app=graphiql.assets_app()),
            *operations_routes(settings),
            *webhook_routes(settings, runtime.provider, runtime.services),
            *files_routes(runtime.storage if isinstance(runtime.storage, LocalStorage) else None),
            *ops_routes(settings),
        ],
        lifespan=runtime.lifespan,
        # Any HTTP error (a bad multipart body is a 400 from Starlette) answers as GraphQL JSON.
        # The database away is a 503 on every route (a GraphQL answer says it by its code);
        # these classes carry it (the driver's socket error, SQLAlchemy's and asyncpg's own).
        exception_handlers={
            HTTPException: _http_error,
            **dict.fromkeys(_MAY_BE_UNREACHABLE, _unreachable),
            Exception: _unexpected,
        },
    )
    trusted = [str(n) for n in settings.trusted_proxies]
    # Client IP: the socket's, or X-Forwarded-For only when the socket is a trusted proxy.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted or [])
    app.add_middleware(BodyLimit, limit_for=_body_limit(settings))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        # Tokens travel in the Authorization header, never in cookies: no credentials mode.
        allow_credentials=False,
        allow_methods=["GET", "POST"],
        allow_headers=CORS_REQUEST_HEADERS,
        expose_headers=CORS_RESPONSE_HEADERS,
        max_age=600,
    )
    app.add_middleware(
        SecurityHeaders, no_store=lambda path: path == "/graphql", hsts=settings.production
    )
    # Answers past the threshold are gzipped for clients that accept it (introspection shrinks
    # about 12x, GraphiQL's bundle 5x). Level 6 is most of level 9's gain for a fraction of
    # the CPU. Tokens travel in headers, never cookies, so a cross-site page cannot make
    # credentialed requests to measure compressed sizes (BREACH needs that).
    app.add_middleware(GZipMiddleware, minimum_size=settings.gzip_min_bytes, compresslevel=6)
    app.add_middleware(RequestContextMiddleware)
    return app


def _body_limit(settings: Settings) -> Callable[[Scope], int]:
    def limit_for(scope: Scope) -> int:
        path = scope.get("path", "")
        if path == "/webhooks/paystack":
            return WEBHOOK_MAX_BYTES
        if path == "/graphql":
            for name, value in scope.get("headers", ()):
                if name == b"content-type" and value.lower().startswith(b"multipart/"):
                    return settings.max_upload_bytes
        return settings.max_body_bytes

    return limit_for


async def _http_error(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 400)
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(status, "BAD_REQUEST")
    message = getattr(exc, "detail", None) or ("Not Found" if status == 404 else "Bad request")
    return error_response(status, str(message), code)


_MAY_BE_UNREACHABLE: tuple[type[Exception], ...] = (
    OSError,
    SQLAlchemyError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


async def _unreachable(request: Request, exc: Exception) -> Response:
    """SERVICE_UNAVAILABLE (503, ``Retry-After``) when the database is out of reach; any other
    error of these classes is unexpected. A provider delivers a webhook not answered 2xx again
    (deduplicated by reference), so nothing is lost by refusing it now."""
    retry = unavailable(exc)
    if retry is None:
        return await _unexpected(request, exc)
    return error_response(
        503,
        UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        retry,
        headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER)},
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    request_id = report_unexpected(exc)
    return JSONResponse(
        {
            "errors": [
                {
                    "message": "Internal server error",
                    "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id},
                }
            ]
        },
        status_code=500,
    )


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (used by ``stacklo serve --workers N``)."""
    return create_app(Settings())
