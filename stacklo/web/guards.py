"""ASGI guards every HTTP request passes: a bounded body, and security headers on every answer."""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stacklo.web.endpoint import error_response


class BodyTooLarge(Exception):
    """The body passed its limit while streaming in."""


class BodyLimit:
    """Refuse a body over ``limit_for(scope)`` bytes with 413, before reading it when it says
    its length, and as soon as it passes the limit when it streams (chunked): never buffered
    past the limit, whatever the route does with it afterwards."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int]):
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge()
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except BodyTooLarge:
            if not started:
                await _too_large(limit)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _too_large(limit: int) -> ASGIApp:
    return error_response(
        413, f"The request body is larger than {limit} bytes.", "PAYLOAD_TOO_LARGE"
    )


# Every answer: no MIME sniffing, no referrer, never framed, and (unless the route chose its
# own) a policy that lets a JSON answer load nothing at all.
_ALWAYS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
)
_DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


class SecurityHeaders:
    """Security headers on every HTTP answer. ``no_store(path)`` answers carry credentials or
    per-user data (the GraphQL endpoint: tokens, balances) and must never be cached; HSTS only
    when the deployment says it runs behind TLS (production)."""

    def __init__(self, app: ASGIApp, no_store: Callable[[str], bool], hsts: bool):
        self.app = app
        self.no_store = no_store
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = self.no_store(scope.get("path", ""))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _ALWAYS:
                    headers.setdefault(name, value)
                headers.setdefault("content-security-policy", _DEFAULT_CSP)
                if no_store:
                    headers["cache-control"] = "no-store"
                if self.hsts:
                    headers.setdefault(
                        "strict-transport-security", "max-age=31536000; includeSubDomains"
                    )
            await send(message)

        await self.app(scope, receive, with_headers)
