"""Self-hosted GraphiQL: the page, its sign-in panel, and the browser bundles it loads.

Why: the IDE must work with no internet, so nothing comes from a CDN. ``npm ci`` in this folder
installs pinned bundles and its postinstall (``copy-vendor.cjs``) copies the few files the page
needs into ``vendor/``. The page's own script and styles (the sign-in panel, the fetcher) are
``page/``, committed. Only those two folders are read at run time, never ``node_modules``.

Assets are content-addressed (``/graphiql-assets/<digest>/graphiql/graphiql.min.js``,
``stacklo.static``): served ``immutable`` for a year, while the page, a ``/graphql`` answer,
is never cached (``SecurityHeaders`` marks it ``no-store``). Restart the server after editing
``page/``.
"""

from __future__ import annotations

import re
from pathlib import Path
from string import Template
from typing import Final

from starlette.routing import Router

from stacklo.static import HashedAssets, inline_json

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


def _source(name: str) -> Path:
    if name.startswith(_OURS):
        return PAGE_DIR / name.removeprefix(_OURS)
    return VENDOR_DIR / name


_ASSETS: Final = HashedAssets(ASSETS_PATH, {name: _source(name) for name in (*_STYLES, *_SCRIPTS)})


def asset_url(name: str) -> str:
    """The content-addressed URL of one of the page's assets (e.g. ``stacklo/page.js``);
    the digest ``missing`` while the file is absent (see :func:`vendor_missing`)."""
    return _ASSETS.url(name)


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
        graphql_path=inline_json(graphql_path),
        default_query=inline_json(DEFAULT_QUERY),
        default_tabs=inline_json([{"query": query} for query in EXAMPLE_TABS]),
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


def assets_app() -> Router:
    """Serve the page's assets at their content-addressed URLs; mount it at
    :data:`ASSETS_PATH`. Only the files the page loads are served, each only under its
    current digest. Before ``npm ci`` has run the app still imports and serves the API; asset
    requests then fail until it has (see :func:`vendor_missing`)."""
    return _ASSETS.router()


def vendor_missing() -> bool:
    """True if any file the page loads is absent, i.e. ``npm ci`` here has not been run."""
    return _ASSETS.missing()
