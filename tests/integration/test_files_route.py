"""GET /files/{token}: LocalStorage's signed links served by a bare Starlette app in process."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from stacklo.integrations.storage import LocalStorage
from stacklo.web.files import files_routes

BODY = b"%PDF-1.7 " + bytes(range(256)) * 64
KEY = "kyc/user-1/doc-1"


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files", b"s" * 32)


@pytest.fixture
async def http(storage: LocalStorage) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=files_routes(storage))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status
    assert response.headers["cache-control"] == "private, no-store"
    errors = response.json()["errors"]
    assert len(errors) == 1 and errors[0]["message"]
    assert errors[0]["extensions"] == {"code": code}


async def test_a_signed_link_downloads_the_file(
    storage: LocalStorage, http: httpx.AsyncClient
) -> None:
    await storage.put(KEY, io.BytesIO(BODY), len(BODY), "application/pdf")
    url = await storage.url(KEY, 60, "Pièce d'identité.pdf", "application/pdf")

    response = await http.get(url)
    assert response.status_code == 200
    assert response.content == BODY
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-length"] == str(len(BODY))
    assert response.headers["content-disposition"] == (
        'attachment; filename="Pi_ce d\'identit_.pdf"; '
        "filename*=UTF-8''Pi%C3%A8ce%20d%27identit%C3%A9.pdf"
    )
    assert response.headers["cache-control"] == "private, no-store"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_a_tampered_link_is_forbidden(storage: LocalStorage, http: httpx.AsyncClient) -> None:
    await storage.put(KEY, io.BytesIO(BODY), len(BODY), "application/pdf")
    url = await storage.url(KEY, 60, "id.pdf", "application/pdf")
    # Point the link at another user's document, keeping the signature.
    other = await storage.url("kyc/user-2/doc-1", 60, "id.pdf", "application/pdf")
    forged = other.split(".")[0] + "." + url.split(".")[1]
    for bad in (forged, url[:-3], "/files/garbage", "/files/a.b"):
        assert_refused(await http.get(bad), 403, "FORBIDDEN")


async def test_an_expired_link_is_forbidden(storage: LocalStorage, http: httpx.AsyncClient) -> None:
    await storage.put(KEY, io.BytesIO(BODY), len(BODY), "application/pdf")
    token = storage.sign(KEY, 1_700_000_000, "application/pdf", "id.pdf")  # in 2023
    response = await http.get(f"/files/{token}")
    assert_refused(response, 403, "FORBIDDEN")
    assert "expired" in response.json()["errors"][0]["message"]


async def test_a_deleted_or_missing_file_is_not_found(
    storage: LocalStorage, http: httpx.AsyncClient
) -> None:
    await storage.put(KEY, io.BytesIO(BODY), len(BODY), "application/pdf")
    url = await storage.url(KEY, 60, "id.pdf", "application/pdf")
    await storage.delete(KEY)
    assert_refused(await http.get(url), 404, "NOT_FOUND")
    # A key that names a folder (kyc/user-1 holds files) is no file either.
    await storage.put(KEY, io.BytesIO(BODY), len(BODY), "application/pdf")
    folder = await storage.url("kyc/user-1", 60, "x.pdf", "application/pdf")
    assert_refused(await http.get(folder), 404, "NOT_FOUND")


def test_no_route_in_s3_mode() -> None:
    assert files_routes(None) == []


async def test_the_route_follows_the_base_path(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path, b"s" * 32, base_url_path="/downloads")
    await storage.put("k", io.BytesIO(b"abc"), 3, "text/plain")
    app = Starlette(routes=files_routes(storage))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as client:
        url = await storage.url("k", 60, "k.txt", "text/plain")
        assert url.startswith("/downloads/")
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"abc"
