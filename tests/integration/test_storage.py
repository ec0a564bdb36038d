"""The storage adapters: S3Storage against moto's S3 server over real HTTP on 127.0.0.1, and
LocalStorage in a temporary folder. No database is needed."""

from __future__ import annotations

import io
import os
import socket
import stat
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aioboto3
import httpx
import pytest
from botocore.exceptions import ClientError
from moto.server import ThreadedMotoServer

from stacklo.domain.ports import ObjectStorage, ProviderUnavailable
from stacklo.integrations.storage import (
    MAX_EXPIRES_IN,
    Expired,
    InvalidSignature,
    LocalStorage,
    S3Storage,
    StorageUnavailable,
    build_storage,
    content_disposition,
)

# Unclosed clients and large raw bodies (aiohttp's warning) fail the test.
pytestmark = pytest.mark.filterwarnings("error::ResourceWarning")

MiB = 1024 * 1024
REGION = "eu-west-1"
CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
SECRET = b"k" * 32
BAD_KEYS = ["../x", "/etc/passwd", "a/../b", "a//b", "a/", "a.pdf", "a\\b", "", "a b", "kyc/é"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RecordingFile(io.RawIOBase):
    """A readable file that remembers the size of every read asked of it."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads.append(size)
        return bytes(self._inner.read(size))


class FailingFile(io.RawIOBase):
    """Gives ``good`` bytes, then fails as a broken disk would."""

    def __init__(self, good: bytes):
        self._good = io.BytesIO(good)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._good.read(size)
        if not data:
            raise OSError("read failed")
        return data


# ------------------------------------------------------------------------------ S3


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
async def bucket(moto_endpoint: str) -> str:
    name = f"kyc-{uuid.uuid4().hex[:12]}"
    async with raw_client(moto_endpoint) as s3:
        await s3.create_bucket(
            Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
    return name


def raw_client(endpoint: str) -> Any:
    session = aioboto3.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
    )
    return session.client("s3", endpoint_url=endpoint)


@pytest.fixture
async def s3(moto_endpoint: str, bucket: str) -> AsyncIterator[S3Storage]:
    async with S3Storage(
        bucket,
        region=REGION,
        endpoint_url=moto_endpoint,
        max_attempts=1,
        part_size=5 * MiB,
        **CREDENTIALS,
    ) as storage:
        yield storage


def new_key() -> str:
    return f"kyc/{uuid.uuid4()}/{uuid.uuid4()}"


async def head(endpoint: str, bucket: str, key: str) -> dict[str, Any]:
    async with raw_client(endpoint) as client:
        return dict(await client.head_object(Bucket=bucket, Key=key))


async def test_s3_streams_a_large_upload_encrypted_and_serves_it_by_presigned_url(
    s3: S3Storage, moto_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(12 * MiB + 123)  # three multipart parts of 5 MiB
    path = tmp_path / "scan.pdf"
    path.write_bytes(data)
    key = new_key()
    with path.open("rb") as f:
        body = RecordingFile(f)
        await s3.put(key, body, len(data), "application/pdf")  # type: ignore[arg-type]
    # Streamed: never asked for the whole file at once, never more than a part.
    assert body.reads and max(body.reads) <= 5 * MiB < len(data)

    info = await head(moto_endpoint, bucket, key)
    assert info["ServerSideEncryption"] == "AES256"
    assert info["ContentType"] == "application/pdf"
    assert info["ContentLength"] == len(data)

    url = await s3.url(key, 60, "passport scan.pdf", "application/pdf")
    async with httpx.AsyncClient() as http:
        got = await http.get(url)
    assert got.status_code == 200
    assert got.content == data
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == 'attachment; filename="passport scan.pdf"'


async def test_s3_single_request_upload_is_encrypted_too(
    s3: S3Storage, moto_endpoint: str, bucket: str
) -> None:
    data = b"\x89PNG" + os.urandom(2 * MiB)  # below a part: one PUT (and past aiohttp's 1 MB)
    key = new_key()
    await s3.put(key, io.BytesIO(data), len(data), "image/png")
    info = await head(moto_endpoint, bucket, key)
    assert info["ServerSideEncryption"] == "AES256"
    assert info["ContentType"] == "image/png"
    assert info["ContentLength"] == len(data)


async def test_s3_presigned_url_is_bounded(s3: S3Storage) -> None:
    url = await s3.url(new_key(), 90, "id.jpg", "image/jpeg")
    query = parse_qs(urlsplit(url).query)
    # moto's S3 neither checks signatures nor enforces expiry, so a GET after the time would
    # still succeed there: assert the SigV4 expiry S3 itself enforces is in the URL instead.
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["90"]
    assert query["response-content-disposition"] == ['attachment; filename="id.jpg"']
    for bad in (0, MAX_EXPIRES_IN + 1):
        with pytest.raises(ValueError, match="expires_in"):
            await s3.url(new_key(), bad, "id.jpg", "image/jpeg")
    with pytest.raises(ValueError, match="content type"):
        await s3.url(new_key(), 60, "id.jpg", "image/jpeg\r\nX-Evil: 1")


async def test_s3_delete(s3: S3Storage, moto_endpoint: str, bucket: str) -> None:
    key = new_key()
    await s3.put(key, io.BytesIO(b"%PDF-1.7"), 8, "application/pdf")
    url = await s3.url(key, 60, "a.pdf", "application/pdf")
    await s3.delete(key)
    with pytest.raises(ClientError):
        await head(moto_endpoint, bucket, key)
    async with httpx.AsyncClient() as http:
        # S3 answers 403 for a missing key to whoever may not list the bucket (moto does too).
        assert (await http.get(url)).status_code in (403, 404)
    await s3.delete(key)  # already gone: not an error


async def test_s3_short_body_keeps_nothing(s3: S3Storage, moto_endpoint: str, bucket: str) -> None:
    key = new_key()
    with pytest.raises(ValueError, match="ended after 3 of 10"):
        await s3.put(key, io.BytesIO(b"abc"), 10, "application/pdf")
    with pytest.raises(ClientError):
        await head(moto_endpoint, bucket, key)


async def test_s3_refuses_bad_keys(s3: S3Storage) -> None:
    for key in BAD_KEYS:
        with pytest.raises(ValueError, match="invalid storage key"):
            await s3.put(key, io.BytesIO(b"x"), 1, "image/png")


async def test_s3_unreachable_or_refusing_is_storage_unavailable(moto_endpoint: str) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with S3Storage(
        "kyc", region=REGION, endpoint_url=closed, max_attempts=1, connect_timeout=1, **CREDENTIALS
    ) as down:
        with pytest.raises(StorageUnavailable):
            await down.put(new_key(), io.BytesIO(b"x"), 1, "image/png")
        with pytest.raises(StorageUnavailable):
            await down.delete(new_key())
    # Reachable, but the bucket does not exist: the caller still cannot store the file.
    async with S3Storage(
        "no-such-bucket", region=REGION, endpoint_url=moto_endpoint, max_attempts=1, **CREDENTIALS
    ) as missing:
        with pytest.raises(ProviderUnavailable):  # StorageUnavailable is one
            await missing.put(new_key(), io.BytesIO(b"x"), 1, "image/png")


# ------------------------------------------------------------------------------ local folder


@pytest.fixture
def local(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files", SECRET)


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


async def test_local_round_trip(local: LocalStorage) -> None:
    key = "kyc/user-1/doc_1"
    await local.put(key, io.BytesIO(b"%PDF-1.7 body"), 13, "application/pdf")
    stored = local.folder / key
    assert stored.read_bytes() == b"%PDF-1.7 body"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600

    url = await local.url(key, 300, "Passport.pdf", "application/pdf")
    assert url.startswith("/files/")
    token = url.removeprefix("/files/")
    assert "/" not in token
    assert local.open_signed(token, datetime.now(UTC)) == (
        stored,
        "application/pdf",
        "Passport.pdf",
    )

    await local.delete(key)
    assert not stored.exists()
    await local.delete(key)  # already gone: not an error


async def test_local_writes_atomically(local: LocalStorage) -> None:
    key = "kyc/user-1/doc"
    await local.put(key, io.BytesIO(b"first"), 5, "image/png")
    assert files_in(local.folder) == ["kyc/user-1/doc"]  # no temporary file left behind

    await local.put(key, io.BytesIO(b"second"), 6, "image/png")
    assert (local.folder / key).read_bytes() == b"second"

    # A failure halfway leaves the previous file whole, and no temporary file.
    with pytest.raises(StorageUnavailable):
        await local.put(key, FailingFile(b"thi"), 5, "image/png")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ended after 3 of 5"):
        await local.put(key, io.BytesIO(b"thi"), 5, "image/png")
    assert (local.folder / key).read_bytes() == b"second"
    assert files_in(local.folder) == ["kyc/user-1/doc"]


async def test_local_copies_only_size_bytes(local: LocalStorage) -> None:
    await local.put("k", io.BytesIO(b"abcdef"), 3, "text/plain")
    assert (local.folder / "k").read_bytes() == b"abc"


async def test_local_refuses_keys_outside_its_folder(local: LocalStorage) -> None:
    for key in BAD_KEYS:
        with pytest.raises(ValueError, match="invalid storage key"):
            await local.put(key, io.BytesIO(b"x"), 1, "image/png")
        with pytest.raises(ValueError, match="invalid storage key"):
            await local.delete(key)
        with pytest.raises(ValueError, match="invalid storage key"):
            await local.url(key, 60, "x.png", "image/png")
        with pytest.raises(ValueError, match="invalid storage key"):
            local.sign(key, 2_000_000_000, "image/png", "x.png")
    assert not local.folder.exists() or files_in(local.folder) == []


async def test_local_tampered_tokens_are_refused(local: LocalStorage, tmp_path: Path) -> None:
    token = local.sign("kyc/u/doc", 2_000_000_000, "image/png", "x.png")
    body, signature = token.split(".")
    now = datetime.fromtimestamp(1_900_000_000, UTC)
    assert local.open_signed(token, now)[0] == local.folder / "kyc/u/doc"

    # Another key in the payload, signed by someone else, a flipped character...
    forged_body = local.sign("kyc/u/other", 2_000_000_000, "image/png", "x.png").split(".")[0]
    foreign = LocalStorage(tmp_path / "other", b"z" * 32).sign(
        "kyc/u/doc", 2_000_000_000, "image/png", "x.png"
    )
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    for bad in (
        f"{forged_body}.{signature}",
        f"{body}.{signature[:-2]}",
        f"{body}.",
        f".{signature}",
        body,
        foreign,
        flipped,
        "",
        "é.é",
        "!!!.@@@",
    ):
        with pytest.raises(InvalidSignature):
            local.open_signed(bad, now)


async def test_local_links_expire(local: LocalStorage) -> None:
    expires = 1_700_000_000
    token = local.sign("kyc/u/doc", expires, "image/png", "x.png")
    local.open_signed(token, datetime.fromtimestamp(expires - 1, UTC))
    with pytest.raises(Expired):
        local.open_signed(token, datetime.fromtimestamp(expires, UTC))

    url = await local.url("kyc/u/doc", 60, "x.png", "image/png")
    token = url.rsplit("/", 1)[1]
    with pytest.raises(Expired):
        local.open_signed(token, datetime.now(UTC) + timedelta(seconds=61))
    for bad in (0, MAX_EXPIRES_IN + 1):
        with pytest.raises(ValueError, match="expires_in"):
            await local.url("kyc/u/doc", bad, "x.png", "image/png")


def test_local_base_url_path_and_secret() -> None:
    assert LocalStorage(Path("f"), SECRET, "/downloads/").base_url_path == "/downloads"
    with pytest.raises(ValueError, match="16 bytes"):
        LocalStorage(Path("f"), b"short")


def test_content_disposition_never_breaks_the_header() -> None:
    assert content_disposition("id.pdf") == 'attachment; filename="id.pdf"'
    assert content_disposition('a"b\r\n.pdf') == (
        "attachment; filename=\"a_b__.pdf\"; filename*=UTF-8''a%22b%0D%0A.pdf"
    )
    assert content_disposition("pièce.pdf") == (
        "attachment; filename=\"pi_ce.pdf\"; filename*=UTF-8''pi%C3%A8ce.pdf"
    )
    assert content_disposition("") == 'attachment; filename="download"'


# ------------------------------------------------------------------------------ wiring


def settings(storage_url: str | None, tmp_path: Path) -> Any:
    return SimpleNamespace(
        storage_url=storage_url,
        s3_access_key_id="AKIDEXAMPLE",
        s3_secret_access_key="secret",
        data_dir=tmp_path,
        secret="jwt-secret-" + "x" * 40,
    )


async def test_build_storage(tmp_path: Path) -> None:
    local = build_storage(settings(None, tmp_path))
    assert isinstance(local, LocalStorage)
    assert local.folder == tmp_path / "files"
    # The same secret gives the same signing key: links survive a restart.
    again = build_storage(settings(None, tmp_path))
    assert isinstance(again, LocalStorage)
    token = local.sign("k", 2_000_000_000, "image/png", "x.png")
    again.open_signed(token, datetime.now(UTC))

    remote: ObjectStorage = build_storage(
        settings("s3://kyc-docs?region=eu-west-1&endpoint_url=http://127.0.0.1:9000", tmp_path)
    )
    assert isinstance(remote, S3Storage)
    async with remote:
        assert remote.bucket == "kyc-docs"
        url = await remote.url("k", 60, "x.png", "image/png")
    assert url.startswith("http://127.0.0.1:9000/kyc-docs/k?")
    assert "AKIDEXAMPLE%2F" in url and "%2Feu-west-1%2Fs3%2F" in url

    for bad in (
        "http://kyc-docs",
        "s3://",
        "s3://kyc-docs/prefix",
        "s3://Bad_Bucket",
        "s3://kyc-docs?regoin=eu-west-1",
    ):
        with pytest.raises(ValueError, match="storage URL"):
            build_storage(settings(bad, tmp_path))
