"""GET /files/{token}: the local folder's signed file links (``LocalStorage.url``).

Only in the embedded mode: with S3 the links are S3's own presigned URLs and there is no
route. The token is the only credential, so answers are never cached, always downloads, and
never sniffed or rendered as a page of this origin.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from stat import S_ISREG

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from stacklo.integrations.storage import (
    Expired,
    InvalidSignature,
    LocalStorage,
    content_disposition,
)
from stacklo.web.endpoint import error_response

NO_STORE = {"Cache-Control": "private, no-store"}
FILE_HEADERS = {
    **NO_STORE,
    "X-Content-Type-Options": "nosniff",
    # Should a browser render it anyway: no scripts, no requests, a unique origin.
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Referrer-Policy": "no-referrer",
}


def files_routes(storage: LocalStorage | None) -> list[Route]:
    """The download route for ``storage``'s links; none in S3 mode (``storage`` is None)."""
    if storage is None:
        return []

    async def download(request: Request) -> Response:
        token = request.path_params["token"]
        try:
            path, content_type, file_name = storage.open_signed(token, datetime.now(UTC))
        except InvalidSignature:
            return error_response(403, "This link is not valid.", "FORBIDDEN", headers=NO_STORE)
        except Expired:
            return error_response(403, "This link has expired.", "FORBIDDEN", headers=NO_STORE)
        try:
            stat = await asyncio.to_thread(os.stat, path)
        except (FileNotFoundError, NotADirectoryError):
            stat = None
        if stat is None or not S_ISREG(stat.st_mode):
            return error_response(404, "The file does not exist.", "NOT_FOUND", headers=NO_STORE)
        return FileResponse(
            path,
            media_type=content_type,
            stat_result=stat,
            headers={**FILE_HEADERS, "Content-Disposition": content_disposition(file_name)},
        )

    return [Route(f"{storage.base_url_path}/{{token}}", download, methods=["GET"])]
