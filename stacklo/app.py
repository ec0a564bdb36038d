"""create_app(settings) -> Starlette. The lifespan owns the engine and the services."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio.to_thread
from broadcaster import Broadcast
from cross_web import HTTPException
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from stacklo import graphiql
from stacklo.auth.passwords import Argon2Hasher
from stacklo.auth.rbac import Authorizer
from stacklo.auth.tokens import Authenticator, JwtTokens
from stacklo.config import Settings
from stacklo.data.db import create_engine, migrate, start_embedded
from stacklo.data.fx import MemoryRateCache, RedisRateCache
from stacklo.data.outbox import RATE_FEED_LOCK, RelayConnection
from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.auth import AuthService
from stacklo.domain.errors import AccessError
from stacklo.domain.exchange import Exchange
from stacklo.domain.ledger import TransactionKind
from stacklo.domain.models import RequestMeta
from stacklo.domain.money import to_minor_units
from stacklo.domain.payments import Limits, Payments
from stacklo.domain.ports import PaymentProvider, RateCache, RateFeed, UnitOfWorkFactory
from stacklo.integrations.paystack import PaystackProvider, parse_event, verify_signature
from stacklo.integrations.rates import CoinbaseRateFeed, SandboxRateFeed
from stacklo.integrations.sandbox import SandboxProvider
from stacklo.observability import (
    RequestContextMiddleware,
    configure_logging,
    log,
    request_id_var,
    settle_heap,
)
from stacklo.realtime.feed import RateTicker
from stacklo.realtime.relay import Relay
from stacklo.realtime.streams import Streams
from stacklo.schema.context import Context, Services
from stacklo.schema.root import schema


def utcnow() -> datetime:
    return datetime.now(UTC)


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value; anything else is no token."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


class GraphQLApp(GraphQL[Context, None]):
    """strawberry's ASGI app with our context, WebSocket auth, JSON 400s and offline GraphiQL."""

    def __init__(self, services: Services | None = None, **kwargs: Any):
        super().__init__(schema, **kwargs)
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                response = await self.run(Request(scope, receive))
            except HTTPException as e:
                # A malformed body is still a GraphQL answer: JSON with an errors list.
                response = JSONResponse(
                    {"errors": [{"message": e.reason, "extensions": {"code": "BAD_REQUEST"}}]},
                    status_code=e.status_code,
                )
            await response(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        assert self.services is not None
        client = request.client.host if request.client else None
        return Context(
            services=self.services,
            meta=RequestMeta(
                ip_address=client,
                user_agent=(request.headers.get("user-agent") or "")[:256] or None,
                request_id=request_id_var.get(),
            ),
            bearer=bearer_token(request.headers.get("authorization")),
            request=request,
            response=response,
        )

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        raw = params.get("authorization") or params.get("Authorization")
        if raw is None:
            return None  # anonymous socket: subscriptions that need a viewer will say so
        token = bearer_token(raw) if isinstance(raw, str) else None
        if token is None:
            raise ConnectionRejectionError({"message": "Malformed authorization"})
        assert self.services is not None
        try:
            viewer = await self.services.authenticator.authenticate(token)
        except AccessError as e:
            raise ConnectionRejectionError({"message": str(e)}) from None
        context.set_viewer(viewer)
        socket = context.request
        # When the access token expires the socket closes with 4403: the client signs in
        # again and resubscribes with its last cursor.
        delay = (viewer.token_expires_at - utcnow()).total_seconds()
        context.expiry = asyncio.get_running_loop().call_later(
            max(delay, 0),
            lambda: asyncio.ensure_future(_close_quietly(socket, 4403, "token expired")),
        )
        return None

    async def render_graphql_ide(self, request: Request) -> HTMLResponse:
        return HTMLResponse(graphiql.render_html(request.url.path))


async def _close_quietly(socket: WebSocket, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):
        await socket.close(code=code, reason=reason)


def build_provider(settings: Settings) -> PaymentProvider:
    if settings.paystack_secret_key:
        return PaystackProvider(
            settings.paystack_secret_key,
            base_url=settings.paystack_base_url,
            callback_url=settings.paystack_callback_url,
        )
    return SandboxProvider(settings.sandbox_secret)


def webhook_secret(settings: Settings) -> str:
    return settings.paystack_secret_key or settings.sandbox_secret


def build_rate_cache(settings: Settings) -> RateCache:
    if settings.redis_url:
        return RedisRateCache(settings.redis_url, ttl_seconds=settings.rate_max_age_seconds)
    return MemoryRateCache(ttl_seconds=min(1.0, settings.rate_tick_seconds))


def build_exchange(settings: Settings, uow: UnitOfWorkFactory) -> Exchange:
    return Exchange(uow, utcnow, settings.pricing(), build_rate_cache(settings))


def build_rate_feed(settings: Settings) -> RateFeed:
    if settings.rate_feed == "coinbase":
        return CoinbaseRateFeed(settings.rate_feed_url)
    return SandboxRateFeed(seed=settings.rate_feed_seed)


async def run_jobs(
    settings: Settings, engine: Any, broadcast: Broadcast, exchange: Exchange, stop: asyncio.Event
) -> None:
    """What `stacklo worker` runs (and `serve` in-process when embedded): the outbox relay and
    the rate ticker, each leading through its own advisory lock, until ``stop`` is set."""
    relay = Relay(
        SqlUnitOfWorkFactory(engine),
        broadcast,
        poll_seconds=settings.relay_poll_seconds,
        retention=timedelta(days=settings.outbox_retention_days),
    )
    feed = build_rate_feed(settings)
    ticker = RateTicker(
        feed,
        exchange,
        utcnow,
        interval_seconds=settings.rate_tick_seconds,
        history=timedelta(days=settings.rate_history_days),
    )
    try:
        await asyncio.gather(
            relay.run(stop, RelayConnection(engine)),
            ticker.run(stop, RelayConnection(engine, RATE_FEED_LOCK, listen=None)),
        )
    finally:
        if isinstance(feed, CoinbaseRateFeed):
            await feed.aclose()


def build_services(
    settings: Settings,
    engine: Any,
    provider: PaymentProvider | None = None,
    broadcast: Broadcast | None = None,
) -> Services:
    uow = SqlUnitOfWorkFactory(engine)
    tokens = JwtTokens(
        settings.secret,
        settings.jwt_algorithm,
        settings.jwt_issuer,
        settings.jwt_audience,
        timedelta(seconds=settings.access_token_ttl_seconds),
    )
    hasher = Argon2Hasher(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
    return Services(
        settings=settings,
        uow=uow,
        auth=AuthService(
            uow, hasher, tokens, utcnow, timedelta(seconds=settings.refresh_token_ttl_seconds)
        ),
        authenticator=Authenticator(tokens, uow, utcnow),
        authorizer=Authorizer(),
        clock=utcnow,
        streams=Streams(
            broadcast or Broadcast("memory://"),
            uow,
            buffer=settings.subscription_buffer,
            per_user=settings.subscriptions_per_user,
        ),
        payments=Payments(
            uow,
            utcnow,
            provider or build_provider(settings),
            Limits(settings.unverified_daily_limits),
        ),
        exchange=build_exchange(settings, uow),
    )


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    graphql_app = GraphQLApp(
        keep_alive=True,
        keep_alive_interval=15,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
        multipart_uploads_enabled=True,
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[Mapping[str, Any]]:
        url = settings.database_url
        if url is None:
            # Embedded default: one command is a complete system.
            url = await anyio.to_thread.run_sync(start_embedded, settings.data_dir)
            await anyio.to_thread.run_sync(migrate, url)
        engine = create_engine(
            url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow
        )
        broadcast = Broadcast(settings.broadcast_url)
        await broadcast.connect()
        services = build_services(settings, engine, provider, broadcast)
        graphql_app.services = services
        holder["services"] = services
        stop = asyncio.Event()
        jobs: asyncio.Task[None] | None = None
        if settings.worker_in_process:
            jobs = asyncio.create_task(
                run_jobs(settings, engine, broadcast, services.exchange, stop)
            )
        settle_heap()
        log.info("started", embedded=settings.embedded)
        try:
            yield {"engine": engine, "services": services}
        finally:
            stop.set()
            if jobs is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(jobs, timeout=5)
            await broadcast.disconnect()
            if isinstance(provider, PaystackProvider):
                await provider.aclose()
            await engine.dispose()

    provider = build_provider(settings)
    holder: dict[str, Services] = {}

    def request_meta(request: Request) -> RequestMeta:
        return RequestMeta(
            ip_address=request.client.host if request.client else None,
            user_agent=(request.headers.get("user-agent") or "")[:256] or None,
            request_id=request_id_var.get(),
        )

    async def deliver_webhook(raw: bytes, signature: str | None, request: Request) -> Response:
        # Verify before parsing: an unsigned body is never even looked at.
        if not verify_signature(webhook_secret(settings), raw, signature):
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        event = parse_event(raw)
        if event is None:
            return JSONResponse({"status": "ignored"})
        outcome = await holder["services"].payments.apply_provider_event(
            event, request_meta(request)
        )
        log.info("provider_event", kind=event.kind, reference=event.reference, outcome=outcome)
        return JSONResponse({"status": outcome})

    async def paystack_webhook(request: Request) -> Response:
        raw = await request.body()
        return await deliver_webhook(raw, request.headers.get("x-paystack-signature"), request)

    sandbox_routes: list[BaseRoute] = []
    if isinstance(provider, SandboxProvider):

        async def payout_lookup(reference: str) -> tuple[int, str] | None:
            async with holder["services"].uow(read_only=True) as uow:
                tx = await uow.ledger.by_reference(reference)
            if tx is None or tx.kind is not TransactionKind.WITHDRAWAL:
                return None
            return to_minor_units(tx.money), tx.currency.value

        sandbox_routes = list(provider.routes(deliver_webhook, payout_lookup))

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        try:
            async with asyncio.timeout(2), request.state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as e:  # any failure means "do not route traffic here"
            return JSONResponse(
                {"status": "unavailable", "reason": type(e).__name__}, status_code=503
            )
        return JSONResponse({"status": "ready"})

    async def metrics(request: Request) -> Response:
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/graphql", graphql_app, methods=["GET", "POST"]),
            WebSocketRoute("/graphql", graphql_app),
            Mount(graphiql.ASSETS_PATH, app=graphiql.assets_app()),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
            Route("/webhooks/paystack", paystack_webhook, methods=["POST"]),
            *sandbox_routes,
        ],
        lifespan=lifespan,
    )
    trusted = [str(n) for n in settings.trusted_proxies]
    # Client IP: the socket's, or X-Forwarded-For only when the socket is a trusted proxy.
    app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted or [])
    app.add_middleware(RequestContextMiddleware)
    return app


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (used by ``stacklo serve --workers N``)."""
    return create_app(Settings())
