"""The live operations dashboard for staff, ``GET /ops``: KPI tiles, an activity feed, rates.

Why a page of its own: staff need it in production, where GraphiQL is off. It grants nothing:
the HTML and its scripts are public, and every figure comes from the GraphQL API with the
staff member's own token (``platformStats`` polled over HTTP, ``platformActivityEvents`` and
``rateUpdated`` over graphql-ws), so the API's access policy decides who sees what.

Offline and strict, like GraphiQL's page (``stacklo.graphiql``): every asset is same-origin at
a content-addressed URL (``/ops-assets/<first 16 hex of SHA-256>/ops.js``) served ``immutable``
for a year, while the page, which names the current digests, is ``no-store``. Each file is read
and hashed once, at first use, and served from those bytes; any other digest is a 404. The only
third-party code is graphql-ws's browser bundle, the very file GraphiQL's ``npm ci`` already
puts in ``stacklo/graphiql/vendor``. The page's GraphQL operations are one document,
``page/operations.graphql``, sent as written: ``stacklo persisted-queries register`` that file
and the page works under ``STACKLO_PERSISTED_QUERIES=allowlist`` too.
"""

from __future__ import annotations

import hashlib
import html
import json
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router

from stacklo.config import Settings
from stacklo.graphiql import VENDOR_DIR

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
IMMUTABLE: Final = "public, max-age=31536000, immutable"

# Asset name (the URL after the digest) -> the file served. Scripts in load order: the
# graphql-ws bundle defines the global `graphqlWs` that ops.js uses.
_SOURCES: Final = {
    "ops.css": PAGE_DIR / "ops.css",
    "graphql-ws.min.js": VENDOR_DIR / "graphql-ws" / "graphql-ws.min.js",
    "ops.js": PAGE_DIR / "ops.js",
}
_STYLES: Final = ("ops.css",)
_SCRIPTS: Final = ("graphql-ws.min.js", "ops.js")
_MEDIA_TYPES: Final = {".js": "text/javascript", ".css": "text/css"}

OPERATIONS: Final = (PAGE_DIR / "operations.graphql").read_text(encoding="utf-8")
"""Every operation the page sends, one document: each request names its operation in it."""

_PAGE: Final = Template((PAGE_DIR / "ops.html").read_text(encoding="utf-8"))


@dataclass(frozen=True, slots=True)
class _Asset:
    digest: str
    body: bytes
    media_type: str


_assets: dict[str, _Asset] = {}
_assets_lock = threading.Lock()


def _asset(name: str) -> _Asset | None:
    """The named asset as this process first read it; None while its file is absent (nothing
    is remembered then, so an ``npm ci`` run later is picked up)."""
    asset = _assets.get(name)
    if asset is not None:
        return asset
    source = _SOURCES.get(name)
    if source is None:
        return None
    try:
        body = source.read_bytes()
    except FileNotFoundError:
        return None
    digest = hashlib.sha256(body).hexdigest()[:16]
    with _assets_lock:
        return _assets.setdefault(name, _Asset(digest, body, _MEDIA_TYPES[source.suffix]))


def asset_url(name: str) -> str:
    """The content-addressed URL of one of the page's assets (``ops.js``...). An absent file
    gets the digest ``missing``, never served: the page then says what is wrong."""
    asset = _asset(name)
    return f"{ASSETS_PATH}/{asset.digest if asset else 'missing'}/{name}"


def _js(value: object) -> str:
    """JSON for an inline <script>; escaping <, > and & stops `</script>` breakouts."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


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
        settings=_js(
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


async def _serve(request: Request) -> Response:
    asset = _asset(request.path_params["name"])
    if asset is None or request.path_params["digest"] != asset.digest:
        # An old or made-up digest: never answer it with the current bytes.
        raise HTTPException(404)
    return Response(asset.body, media_type=asset.media_type, headers={"Cache-Control": IMMUTABLE})


def ops_routes(settings: Settings) -> list[BaseRoute]:
    """``GET /ops`` and its assets under :data:`ASSETS_PATH`. Served whatever
    ``settings.graphiql_enabled`` says: the page holds no data and no privilege."""
    return [
        _page_endpoint(settings.env),
        Mount(
            ASSETS_PATH,
            app=Router(
                routes=[Route("/{digest}/{name}", _serve, methods=["GET"])],
                redirect_slashes=False,
            ),
        ),
    ]
