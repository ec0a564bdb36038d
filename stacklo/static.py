"""Content-addressed static assets for the self-hosted pages (GraphiQL and /ops).

Every asset URL carries the first 16 hex digits of the SHA-256 of the file's bytes
(``<prefix>/<digest>/<name>``), so it is served with a one-year ``immutable`` lifetime while
the page, which names the current digests, is never cached. Each file is read and hashed once,
at first use, and then served from those same bytes: a URL's content can never differ from its
digest, and a digest that is not the current one is a 404, never other bytes. A file that is
absent (``npm ci`` not run yet) is not remembered, so it is picked up once it appears; a
changed file is picked up by the next process.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, Router

IMMUTABLE: Final = "public, max-age=31536000, immutable"
_MEDIA_TYPES: Final = {".js": "text/javascript", ".css": "text/css"}


@dataclass(frozen=True, slots=True)
class Asset:
    digest: str
    body: bytes
    media_type: str


class HashedAssets:
    """The files a page loads (asset name -> file), served under ``prefix``; nothing else."""

    def __init__(self, prefix: str, sources: Mapping[str, Path]):
        self.prefix = prefix
        self._sources = dict(sources)
        self._read: dict[str, Asset] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Asset | None:
        """The named asset as this process first read it; None while its file is absent."""
        asset = self._read.get(name)
        if asset is not None:
            return asset
        source = self._sources.get(name)
        if source is None:
            return None
        try:
            body = source.read_bytes()
        except FileNotFoundError:
            return None
        digest = hashlib.sha256(body).hexdigest()[:16]
        with self._lock:
            return self._read.setdefault(name, Asset(digest, body, _MEDIA_TYPES[source.suffix]))

    def url(self, name: str) -> str:
        """The asset's content-addressed URL. An absent file gets the digest ``missing``,
        never served: the page then fails visibly instead of loading something else."""
        asset = self.get(name)
        return f"{self.prefix}/{asset.digest if asset else 'missing'}/{name}"

    def missing(self) -> bool:
        """True if any file is absent (e.g. ``npm ci`` has not been run)."""
        return not all(source.is_file() for source in self._sources.values())

    async def _serve(self, request: Request) -> Response:
        asset = self.get(request.path_params["name"])
        if asset is None or request.path_params["digest"] != asset.digest:
            # An old or made-up digest: never answer it with the current bytes.
            raise HTTPException(404)
        return Response(
            asset.body, media_type=asset.media_type, headers={"Cache-Control": IMMUTABLE}
        )

    def router(self) -> Router:
        """Mount it at ``prefix``. No trailing-slash redirects: an asset URL either is one or
        is a 404."""
        return Router(
            routes=[Route("/{digest}/{name:path}", self._serve, methods=["GET"])],
            redirect_slashes=False,
        )


def inline_json(value: object) -> str:
    """JSON for an inline <script>; escaping <, > and & stops `</script>` breakouts."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
