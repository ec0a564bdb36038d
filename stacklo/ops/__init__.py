"""The live operations dashboard for staff, ``GET /ops``: KPI tiles, an activity feed, rates.

Why a page of its own: staff need it in production, where GraphiQL is off. It grants nothing:
the HTML and its scripts are public, and every figure comes from the GraphQL API with the
staff member's own token (``platformStats`` polled over HTTP, ``platformActivityEvents`` and
``rateUpdated`` over graphql-ws), so the API's access policy decides who sees what.

Offline and strict, like GraphiQL's page (``stacklo.graphiql``): every asset is same-origin at
a content-addressed URL (``/ops-assets/<digest>/ops.js``, ``stacklo.static``) served
``immutable`` for a year, while the page, which names the current digests, is ``no-store``.
The only third-party code is graphql-ws's browser bundle, the very file GraphiQL's ``npm ci``
already puts in ``stacklo/graphiql/vendor``. The page's GraphQL operations are one document,
``page/operations.graphql``, sent as written: ``stacklo persisted-queries register`` that file
and the page works under ``STACKLO_PERSISTED_QUERIES=allowlist`` too.
"""

from __future__ import annotations

import html
import secrets
from pathlib import Path
from string import Template
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from stacklo.config import Settings
from stacklo.graphiql import VENDOR_DIR
from stacklo.static import HashedAssets, inline_json

__all__ = [
    "ASSETS_PATH",
    "OPERATIONS",
    "PAGE_DIR",
    "asset_url",
    "content_security_policy",
    "ops_routes",
    "render_html",
]

ASSETS_PATH: Final = "/ops-assets"
"""Where the page's assets are mounted; every asset URL starts with it."""

PAGE_DIR: Final = Path(__file__).resolve().parent / "page"
"""The page's own template, script, styles and GraphQL document (committed)."""

GRAPHQL_PATH: Final = "/graphql"

# Asset name (the URL after the digest) -> the file served. Scripts in load order: the
# graphql-ws bundle defines the global `graphqlWs` that ops.js uses.
_SOURCES: Final = {
    "ops.css": PAGE_DIR / "ops.css",
    "graphql-ws.min.js": VENDOR_DIR / "graphql-ws" / "graphql-ws.min.js",
    "ops.js": PAGE_DIR / "ops.js",
}
_STYLES: Final = ("ops.css",)
_SCRIPTS: Final = ("graphql-ws.min.js", "ops.js")

OPERATIONS: Final = (PAGE_DIR / "operations.graphql").read_text(encoding="utf-8")
"""Every operation the page sends, one document: each request names its operation in it."""

_PAGE: Final = Template((PAGE_DIR / "ops.html").read_text(encoding="utf-8"))


_ASSETS: Final = HashedAssets(ASSETS_PATH, _SOURCES)


def asset_url(name: str) -> str:
    """The content-addressed URL of one of the page's assets (``ops.js``...); the digest
    ``missing`` while the file is absent (the page then says what is wrong)."""
    return _ASSETS.url(name)


def render_html(nonce: str, environment: str) -> str:
    """The page: same-origin assets only, and one inline script (carrying ``nonce``) with its
    settings. ``environment`` is shown in the header so staff know which platform they watch."""
    styles = "\n".join(f'<link rel="stylesheet" href="{asset_url(n)}">' for n in _STYLES)
    scripts = "\n".join(f'<script src="{asset_url(n)}"></script>' for n in _SCRIPTS)
    return _PAGE.substitute(
        styles=styles,
        scripts=scripts,
        nonce=nonce,
        environment=html.escape(environment),
        settings=inline_json(
            {"graphqlPath": GRAPHQL_PATH, "operations": OPERATIONS, "environment": environment}
        ),
    )


def content_security_policy(nonce: str) -> str:
    """Our own scripts and styles and the one inline script carrying ``nonce``; requests to
    this origin only. ``connect-src 'self'`` covers the same-origin WebSocket (ws: or wss:) in
    current browsers, as on the GraphiQL page."""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


def _page_endpoint(environment: str) -> Route:
    async def page(request: Request) -> Response:
        nonce = secrets.token_urlsafe(16)
        return HTMLResponse(
            render_html(nonce, environment),
            headers={
                "Cache-Control": "no-store",
                "Content-Security-Policy": content_security_policy(nonce),
            },
        )

    return Route("/ops", page, methods=["GET"])


def ops_routes(settings: Settings) -> list[BaseRoute]:
    """``GET /ops`` and its assets under :data:`ASSETS_PATH`. Served whatever
    ``settings.graphiql_enabled`` says: the page holds no data and no privilege."""
    return [
        _page_endpoint(settings.env),
        Mount(ASSETS_PATH, app=_ASSETS.router()),
    ]
