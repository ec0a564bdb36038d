"""Routes beside GraphQL: provider webhooks, the sandbox provider's pages, health and metrics."""

from __future__ import annotations

import asyncio
import hmac
import os
from collections.abc import Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from stacklo.config import Settings
from stacklo.domain.errors import DomainError
from stacklo.domain.ledger import TransactionKind
from stacklo.domain.money import to_minor_units
from stacklo.domain.ports import PaymentProvider
from stacklo.integrations.paystack import MalformedEvent, parse_event, verify_signature
from stacklo.integrations.sandbox import SandboxProvider
from stacklo.observability import log
from stacklo.schema.context import Services
from stacklo.web.endpoint import bearer_token, error_response, request_meta

# A provider webhook is a few kilobytes; anything much larger is not one.
WEBHOOK_MAX_BYTES = 64 * 1024


def webhook_routes(
    settings: Settings, provider: PaymentProvider, services: Callable[[], Services]
) -> list[BaseRoute]:
    """POST /webhooks/paystack, and the sandbox's pages when the sandbox is the provider."""
    secret = settings.paystack_secret_key or settings.sandbox_secret

    async def deliver(raw: bytes, signature: str | None, request: Request) -> Response:
        # Verify before parsing: an unsigned body is never even looked at.
        if not verify_signature(secret, raw, signature):
            return JSONResponse({"error": "invalid signature"}, status_code=401)
        try:
            event = parse_event(raw)
        except MalformedEvent as e:
            return JSONResponse({"error": f"malformed event: {e}"}, status_code=400)
        if event is None:
            return JSONResponse({"status": "ignored"})
        try:
            outcome = await services().funding.apply_provider_event(event, request_meta(request))
        except DomainError as e:  # a rule refused it (e.g. a balance past the ledger's range)
            log.warning("provider_event_refused", reference=event.reference, code=e.code.value)
            return JSONResponse({"error": e.message, "code": e.code.value}, status_code=422)
        log.info("provider_event", kind=event.kind, reference=event.reference, outcome=outcome)
        return JSONResponse({"status": outcome})

    async def paystack_webhook(request: Request) -> Response:
        # BodyLimit (web/guards.py) refuses a longer body while it streams in.
        raw = await request.body()
        return await deliver(raw, request.headers.get("x-paystack-signature"), request)

    routes: list[BaseRoute] = [Route("/webhooks/paystack", paystack_webhook, methods=["POST"])]
    if isinstance(provider, SandboxProvider):

        async def payout_lookup(reference: str) -> tuple[int, str] | None:
            async with services().uow(read_only=True) as uow:
                tx = await uow.ledger.by_reference(reference)
            if tx is None or tx.kind is not TransactionKind.WITHDRAWAL:
                return None
            return to_minor_units(tx.money), tx.currency.value

        routes.extend(provider.routes(deliver, payout_lookup))
    return routes


def operations_routes(settings: Settings) -> list[BaseRoute]:
    """/healthz, /readyz and /metrics (token-protected when a token is set; not served in
    production without one)."""

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
        if settings.metrics_token:
            given = bearer_token(request.headers.get("authorization")) or ""
            if not hmac.compare_digest(given.encode(), settings.metrics_token.encode()):
                return error_response(
                    401,
                    "Metrics need their bearer token.",
                    "UNAUTHENTICATED",
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        elif settings.production:
            return error_response(404, "Not Found", "NOT_FOUND")
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
    ]
