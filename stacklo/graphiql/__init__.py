"""Self-hosted GraphiQL: the page and the browser bundles it loads.

Why: the IDE must work with no internet, so nothing comes from a CDN. ``npm ci`` in this folder
installs pinned bundles and its postinstall (``copy-vendor.cjs``) copies the few files the page
needs into ``vendor/``, which the app serves under :data:`ASSETS_PATH`. Only ``vendor/`` is read
at run time, never ``node_modules``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from string import Template
from typing import Final

from starlette.staticfiles import StaticFiles

__all__ = [
    "ASSETS_PATH",
    "VENDOR_DIR",
    "assets_app",
    "content_security_policy",
    "render_html",
    "vendor_missing",
]

ASSETS_PATH: Final = "/graphiql-assets"
"""URL prefix where :func:`assets_app` must be mounted; the page's asset URLs start with it."""

VENDOR_DIR: Path = Path(__file__).resolve().parent / "vendor"
"""Filled by ``npm ci`` here (gitignored); shipped in the wheel as a build artifact."""

# Paths relative to VENDOR_DIR, in load order (react before react-dom before graphiql).
# copy-vendor.cjs must produce each one: keep the two lists in sync.
_STYLES: Final = ("graphiql/graphiql.min.css",)
_SCRIPTS: Final = (
    "react/react.production.min.js",
    "react-dom/react-dom.production.min.js",
    "graphiql/graphiql.min.js",
    "graphql-ws/graphql-ws.min.js",
)

# `$graphql_path` is a JSON string literal. The WebSocket API cannot send HTTP headers, so the
# subscription client passes the Authorization header typed in the Headers editor as
# connection_init payload `{authorization: "Bearer <token>"}`; a new client is made whenever
# that value changes, so a socket never keeps an old identity. HTTP requests already carry the
# editor's headers.
_PAGE: Final = Template(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>stacklo GraphiQL</title>
<link rel="icon" href="data:,">
$styles
<style nonce="$nonce">body{margin:0;height:100vh;overflow:hidden}#graphiql{height:100vh}</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL...</div>
$scripts
<script nonce="$nonce">
(function () {
  "use strict";
  var graphqlPath = $graphql_path;
  var wsUrl = new URL(graphqlPath, window.location.href);
  wsUrl.protocol = wsUrl.protocol === "https:" ? "wss:" : "ws:";
  wsUrl.hash = "";

  function bearer(headers) {
    if (!headers) return null;
    for (var name in headers) {
      if (name.toLowerCase() !== "authorization" || headers[name] == null) continue;
      var token = String(headers[name]).trim();
      if (/^bearer\\b/i.test(token)) token = token.slice(6).trim();
      return token ? "Bearer " + token : null;
    }
    return null;
  }

  var current = null;
  function fetcherFor(auth) {
    if (current && current.auth === auth) return current.fetcher;
    if (current) current.wsClient.dispose();
    var wsClient = graphqlWs.createClient({
      url: wsUrl.href,
      lazy: true,
      connectionParams: auth ? { authorization: auth } : {}
    });
    current = {
      auth: auth,
      wsClient: wsClient,
      fetcher: GraphiQL.createFetcher({
        url: graphqlPath,
        subscriptionUrl: wsUrl.href,
        wsClient: wsClient
      })
    };
    return current.fetcher;
  }

  function fetcher(params, opts) {
    return fetcherFor(bearer(opts && opts.headers))(params, opts);
  }

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      isHeadersEditorEnabled: true,
      defaultEditorToolsVisibility: true
    })
  );
})();
</script>
</body>
</html>
"""
)


def _js_string(value: str) -> str:
    """JSON-encode for an inline <script>; escaping <, > and & stops `</script>` breakouts."""
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
    styles = "\n".join(f'<link rel="stylesheet" href="{ASSETS_PATH}/{f}">' for f in _STYLES)
    scripts = "\n".join(f'<script src="{ASSETS_PATH}/{f}"></script>' for f in _SCRIPTS)
    return _PAGE.substitute(
        styles=styles, scripts=scripts, graphql_path=_js_string(graphql_path), nonce=nonce
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


def assets_app() -> StaticFiles:
    """Serve :data:`VENDOR_DIR`; mount it at :data:`ASSETS_PATH`.

    ``check_dir=False`` so the app still imports and serves the API before ``npm ci`` has run;
    asset requests then fail until it has (see :func:`vendor_missing`).
    """
    return StaticFiles(directory=VENDOR_DIR, check_dir=False)


def vendor_missing() -> bool:
    """True if any file the page loads is absent, i.e. ``npm ci`` here has not been run."""
    return not all((VENDOR_DIR / f).is_file() for f in (*_STYLES, *_SCRIPTS))
