"""Self-hosted GraphiQL: the page, its sign-in panel, and the browser bundles it loads.

Why: the IDE must work with no internet, so nothing comes from a CDN. ``npm ci`` in this folder
installs pinned bundles and its postinstall (``copy-vendor.cjs``) copies the few files the page
needs into ``vendor/``. The page's own script and styles (the sign-in panel, the fetcher) are
``page/``, committed. Only those two folders are read at run time, never ``node_modules``.

Every asset URL carries the first 16 hex digits of the SHA-256 of the file's bytes
(``/graphiql-assets/<digest>/graphiql/graphiql.min.js``), so it is served with a one-year
``immutable`` lifetime, while the page, which names the current digests, is never cached (it
is a ``/graphql`` answer: ``SecurityHeaders`` marks it ``no-store``). Each file is read and
hashed once, at first use, and then served from those same bytes: a URL's content can never
differ from its digest, and a digest that is not the current one is a 404, never other bytes.
A changed file is picked up by the next process (restart the server after editing ``page/``).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

__all__ = [
    "ASSETS_PATH",
    "DEFAULT_QUERY",
    "EXAMPLE_TABS",
    "PAGE_DIR",
    "VENDOR_DIR",
    "asset_url",
    "assets_app",
    "content_security_policy",
    "render_html",
    "vendor_missing",
]

ASSETS_PATH: Final = "/graphiql-assets"
"""URL prefix where :func:`assets_app` must be mounted; the page's asset URLs start with it."""

VENDOR_DIR: Path = Path(__file__).resolve().parent / "vendor"
"""Filled by ``npm ci`` here (gitignored); shipped in the wheel as a build artifact."""

PAGE_DIR: Path = Path(__file__).resolve().parent / "page"
"""The page's own script, styles and example operations (committed)."""

IMMUTABLE: Final = "public, max-age=31536000, immutable"

# Asset names (the URL after the digest), in load order: react before react-dom before
# graphiql, the bundles before our page script. Vendor names are paths relative to VENDOR_DIR
# (copy-vendor.cjs must produce each one: keep the two lists in sync); "stacklo/..." names are
# files in PAGE_DIR.
_STYLES: Final = ("graphiql/graphiql.min.css", "stacklo/page.css")
_SCRIPTS: Final = (
    "react/react.production.min.js",
    "react-dom/react-dom.production.min.js",
    "graphiql/graphiql.min.js",
    "graphql-ws/graphql-ws.min.js",
    "stacklo/page.js",
)
_OURS: Final = "stacklo/"
_MEDIA_TYPES: Final = {".js": "text/javascript", ".css": "text/css"}

DEFAULT_QUERY: Final = (PAGE_DIR / "me.graphql").read_text(encoding="utf-8")
"""The first tab on a first visit, and every new tab: a commented ``me`` query."""

EXAMPLE_TABS: Final = (
    DEFAULT_QUERY,
    (PAGE_DIR / "live.graphql").read_text(encoding="utf-8"),
)
"""The tabs of a first visit (GraphiQL keeps the user's own tabs after that)."""

# One inline script (it carries the nonce): the page's settings. page.js does the work: the
# sign-in panel, the fetcher (HTTP and WebSocket, with the panel's token) and GraphiQL's
# props that must be computed in the browser (headers persistence, plugins).
_PAGE: Final = Template(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stacklo GraphiQL</title>
<link rel="icon" href="data:,">
$styles
</head>
<body>
<div id="graphiql">Loading GraphiQL...</div>
$scripts
<script nonce="$nonce">
StackloGraphiQL.mount(document.getElementById("graphiql"), $graphql_path, {
  defaultQuery: $default_query,
  defaultTabs: $default_tabs,
  isHeadersEditorEnabled: true,
  defaultEditorToolsVisibility: true
});
</script>
</body>
</html>
"""
)


@dataclass(frozen=True, slots=True)
class _Asset:
    digest: str
    body: bytes
    media_type: str


_assets: dict[str, _Asset] = {}
_assets_lock = threading.Lock()


def _source(name: str) -> Path:
    if name.startswith(_OURS):
        return PAGE_DIR / name.removeprefix(_OURS)
    return VENDOR_DIR / name


def _asset(name: str) -> _Asset | None:
    """The named asset as first read (and hashed) by this process; None while it is absent
    (nothing is remembered then, so ``npm ci`` run later is picked up)."""
    asset = _assets.get(name)
    if asset is not None:
        return asset
    if name not in (*_STYLES, *_SCRIPTS):
        return None
    try:
        body = _source(name).read_bytes()
    except FileNotFoundError:
        return None
    media_type = _MEDIA_TYPES[Path(name).suffix]
    digest = hashlib.sha256(body).hexdigest()[:16]
    with _assets_lock:
        return _assets.setdefault(name, _Asset(digest, body, media_type))


def asset_url(name: str) -> str:
    """The content-addressed URL of one of the page's assets (e.g. ``stacklo/page.js``).

    A file that is not there yet gets the digest ``missing``, which is never served: the page
    then fails visibly (see :func:`vendor_missing`) instead of loading something else.
    """
    asset = _asset(name)
    return f"{ASSETS_PATH}/{asset.digest if asset else 'missing'}/{name}"


def _js(value: object) -> str:
    """JSON for an inline <script>; escaping <, > and & stops `</script>` breakouts."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def render_html(graphql_path: str = "/graphql", nonce: str = "") -> str:
    """Return the GraphiQL page for the endpoint at ``graphql_path`` on this same origin.

    Every script and stylesheet is a same-origin URL under :data:`ASSETS_PATH`, so the page
    works offline. The path must be absolute (``/...``) so no external URL can sneak in; the
    WebSocket URL is derived from it and ``location`` in the browser (ws: or wss:).
    """
    if not graphql_path.startswith("/") or graphql_path.startswith("//"):
        raise ValueError(
            f"graphql_path must be an absolute path such as /graphql: {graphql_path!r}"
        )
    if not re.fullmatch(r"[A-Za-z0-9_-]*", nonce):
        raise ValueError("a CSP nonce is base64url")
    styles = "\n".join(f'<link rel="stylesheet" href="{asset_url(f)}">' for f in _STYLES)
    scripts = "\n".join(f'<script src="{asset_url(f)}"></script>' for f in _SCRIPTS)
    return _PAGE.substitute(
        styles=styles,
        scripts=scripts,
        graphql_path=_js(graphql_path),
        default_query=_js(DEFAULT_QUERY),
        default_tabs=_js([{"query": query} for query in EXAMPLE_TABS]),
        nonce=nonce,
    )


def content_security_policy(nonce: str) -> str:
    """The page's CSP: only our own scripts and the one inline script carrying ``nonce``;
    requests (HTTP and WebSocket) to this origin only; never framed."""
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            # GraphiQL sets style attributes at run time.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )


async def _serve(request: Request) -> Response:
    asset = _asset(request.path_params["name"])
    if asset is None or request.path_params["digest"] != asset.digest:
        # An old or made-up digest: never answer it with the current bytes.
        raise HTTPException(404)
    return Response(
        asset.body,
        media_type=asset.media_type,
        headers={"Cache-Control": IMMUTABLE},
    )


def assets_app() -> Router:
    """Serve the page's assets at their content-addressed URLs; mount it at
    :data:`ASSETS_PATH`. Only the files the page loads are served, each only under its
    current digest. Before ``npm ci`` has run the app still imports and serves the API; asset
    requests then fail until it has (see :func:`vendor_missing`)."""
    # No trailing-slash redirects: an asset URL either is one or is a 404.
    return Router(
        routes=[Route("/{digest}/{name:path}", _serve, methods=["GET"])], redirect_slashes=False
    )


def vendor_missing() -> bool:
    """True if any file the page loads is absent, i.e. ``npm ci`` here has not been run."""
    return not all(_source(f).is_file() for f in (*_STYLES, *_SCRIPTS))
