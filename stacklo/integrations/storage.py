"""Object storage for uploaded files (KYC documents): S3, or a local folder when embedded.

Both adapters accept the same keys (``[A-Za-z0-9_-]`` segments joined by ``/``), so a key that
works in development works in production, and a local key can never leave its folder.

Failure policy: ``StorageUnavailable`` (a ``ProviderUnavailable``) when the store cannot be
reached or refuses the request, so callers answer PROVIDER_UNAVAILABLE rather than a 500;
``ValueError`` for a caller's mistake (a bad key, content type or expiry, a body shorter than
its declared size).

Links: S3's presigned GET (SigV4), or for the local folder a Stacklo path carrying the key,
expiry, content type and file name, HMAC-SHA256 signed; ``files_routes`` (``web/files.py``)
serves it. Either way a link lives at most ``MAX_EXPIRES_IN`` seconds (SigV4's own limit).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Final, Protocol
from urllib.parse import parse_qs, quote, urlsplit

import aioboto3  # type: ignore[import-untyped]
import structlog
from boto3.s3.transfer import TransferConfig  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from stacklo.domain.ports import ProviderUnavailable

if TYPE_CHECKING:
    from stacklo.domain.ports import ObjectStorage

__all__ = [
    "MAX_EXPIRES_IN",
    "Expired",
    "InvalidSignature",
    "LocalStorage",
    "S3Storage",
    "StorageSettings",
    "StorageUnavailable",
    "build_storage",
    "content_disposition",
]

log = structlog.get_logger("stacklo.integrations.storage")

#: The longest a link may live: SigV4 presigned URLs refuse more than seven days.
MAX_EXPIRES_IN: Final = 7 * 86_400
MiB: Final = 1024 * 1024

_KEY = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*")
_KEY_MAX = 1024  # S3's limit, in bytes (the key is ASCII)
# A media type, optionally with parameters; printable ASCII only, so never a header break.
_MEDIA_TYPE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+/[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:\s*;[ -~]*)?")


class StorageUnavailable(ProviderUnavailable):
    """The store could not be reached, timed out, or refused the request."""


class InvalidSignature(Exception):
    """A local file link that was not signed by this key (tampered, truncated or foreign)."""


class Expired(Exception):
    """A genuine local file link whose time has passed."""


def _check_key(key: str) -> str:
    if len(key) > _KEY_MAX or not _KEY.fullmatch(key):
        raise ValueError(f"invalid storage key {key!r}: [A-Za-z0-9_-] segments joined by '/'")
    return key


def _check_link(expires_in: int, content_type: str) -> None:
    if not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise ValueError(f"expires_in must be 1 to {MAX_EXPIRES_IN} seconds, got {expires_in}")
    if not _MEDIA_TYPE.fullmatch(content_type):
        raise ValueError(f"invalid content type {content_type!r}")


def content_disposition(file_name: str) -> str:
    """``attachment`` with the name as an ASCII fallback and, when it differs, RFC 5987's
    UTF-8 form: quotes, backslashes and control characters never reach the header."""
    fallback = "".join(
        c if 0x20 <= ord(c) < 0x7F and c not in '"\\' else "_" for c in file_name
    ).strip()
    value = f'attachment; filename="{fallback or "download"}"'
    if fallback != file_name:
        value += f"; filename*=UTF-8''{quote(file_name, safe='')}"
    return value


# ------------------------------------------------------------------------------ S3


class _LimitedReader:
    """``body`` as an async file of exactly ``size`` bytes for aioboto3: each chunk is read
    in a thread (a spooled upload may be on disk) and nothing past ``size`` is sent."""

    def __init__(self, body: BinaryIO, size: int):
        self._body = body
        self._left = size
        self.read_bytes = 0

    async def read(self, n: int = -1) -> bytes:
        n = self._left if n < 0 else min(n, self._left)
        if n <= 0:
            return b""
        data = await asyncio.to_thread(self._body.read, n)
        self._left -= len(data)
        self.read_bytes += len(data)
        return data


class _Part(io.BytesIO):
    """A part (or a small object) as a file, so aiohttp streams it in chunks instead of
    warning about a large raw ``bytes`` body; aioboto3 counts what was sent by its ``len``."""

    def __init__(self, data: bytes):
        super().__init__(data)
        self._size = len(data)

    def __len__(self) -> int:
        return self._size


class S3Storage:
    """``ObjectStorage`` over S3 (or an S3-compatible store at ``endpoint_url``).

    One instance per process: it keeps one aioboto3 session and one client (its connection
    pool), opened on first use. Close it with ``aclose()`` or use it as an async context
    manager. Objects are written with SSE-S3 (AES256). Uploads are streamed in
    ``part_size`` parts (S3's minimum is 5 MiB); at most a few parts are held in memory.
    Credentials default to botocore's chain (environment, instance role) when not given.
    """

    def __init__(
        self,
        bucket: str,
        *,
        region: str,
        endpoint_url: str | None,
        access_key_id: str | None,
        secret_access_key: str | None,
        session_token: str | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 3,
        part_size: int = 8 * MiB,
    ):
        if (access_key_id is None) != (secret_access_key is None):
            raise ValueError("give both the S3 access key id and secret access key, or neither")
        if part_size < 5 * MiB:
            raise ValueError("part_size must be at least 5 MiB (S3's smallest multipart part)")
        self.bucket = bucket
        self._endpoint_url = endpoint_url
        self._session = aioboto3.Session(
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            aws_session_token=session_token,
            region_name=region,
        )
        self._config = Config(
            signature_version="s3v4",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": max_attempts, "mode": "standard"},
            # S3-compatible stores (MinIO, moto) rarely serve bucket subdomains.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
        )
        self._transfer = TransferConfig(
            multipart_threshold=part_size,
            multipart_chunksize=part_size,
            max_concurrency=2,
            max_io_queue=2,
        )
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._opening = asyncio.Lock()

    async def _s3(self) -> Any:
        if self._client is None:
            async with self._opening:
                if self._client is None:
                    stack = contextlib.AsyncExitStack()
                    self._client = await stack.enter_async_context(
                        self._session.client(
                            "s3", endpoint_url=self._endpoint_url, config=self._config
                        )
                    )
                    self._stack = stack
        return self._client

    async def aclose(self) -> None:
        stack, self._stack, self._client = self._stack, None, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> S3Storage:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _unavailable(self, operation: str, key: str, error: Exception) -> StorageUnavailable:
        log.warning("storage_unavailable", operation=operation, key=key, error=str(error))
        return StorageUnavailable(f"S3 {operation} of {key!r} failed: {error}")

    async def put(self, key: str, body: BinaryIO, size: int, content_type: str) -> None:
        _check_key(key)
        if not _MEDIA_TYPE.fullmatch(content_type):
            raise ValueError(f"invalid content type {content_type!r}")
        reader = _LimitedReader(body, size)
        try:
            s3 = await self._s3()
            await s3.upload_fileobj(
                reader,
                self.bucket,
                key,
                ExtraArgs={"ContentType": content_type, "ServerSideEncryption": "AES256"},
                Config=self._transfer,
                Processing=_Part,
            )
        except (BotoCoreError, ClientError, TimeoutError, ConnectionError) as e:
            raise self._unavailable("put", key, e) from e
        if reader.read_bytes != size:
            # The body was shorter than declared: keep no truncated document.
            await self.delete(key)
            raise ValueError(f"the body ended after {reader.read_bytes} of {size} bytes")

    async def delete(self, key: str) -> None:
        """Removing a missing key is not an error (S3 answers 204 either way)."""
        _check_key(key)
        try:
            s3 = await self._s3()
            await s3.delete_object(Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError, TimeoutError, ConnectionError) as e:
            raise self._unavailable("delete", key, e) from e

    async def url(self, key: str, expires_in: int, file_name: str, content_type: str) -> str:
        """A presigned GET, signed here without a request to S3: a missing key is only found
        out by whoever uses the URL (S3's 404, or 403 without permission to list)."""
        _check_key(key)
        _check_link(expires_in, content_type)
        try:
            s3 = await self._s3()
            url: str = await s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": key,
                    "ResponseContentType": content_type,
                    "ResponseContentDisposition": content_disposition(file_name),
                },
                ExpiresIn=expires_in,
            )
        except (BotoCoreError, ClientError) as e:  # e.g. no credentials anywhere
            raise self._unavailable("presign", key, e) from e
        return url


# ------------------------------------------------------------------------------ local folder


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class LocalStorage:
    """``ObjectStorage`` in a folder, for the embedded mode: ``folder/key`` written atomically
    (a temporary file renamed into place) and readable only by this user; links are
    ``{base_url_path}/{token}`` tokens signed with ``secret``, checked by ``open_signed``."""

    def __init__(self, folder: Path, secret: bytes, base_url_path: str = "/files"):
        if len(secret) < 16:
            raise ValueError("the signing secret must be at least 16 bytes")
        self.folder = folder
        self.base_url_path = "/" + base_url_path.strip("/")
        self._secret = secret

    async def aclose(self) -> None:
        """Nothing to release; here so both adapters close the same way."""

    def path(self, key: str) -> Path:
        return self.folder / _check_key(key)

    async def put(self, key: str, body: BinaryIO, size: int, content_type: str) -> None:
        target = self.path(key)
        if not _MEDIA_TYPE.fullmatch(content_type):
            raise ValueError(f"invalid content type {content_type!r}")
        try:
            await asyncio.to_thread(self._write, target, body, size)
        except OSError as e:
            log.warning("storage_unavailable", operation="put", key=key, error=str(e))
            raise StorageUnavailable(f"could not store {key!r}: {e}") from e

    @staticmethod
    def _write(target: Path, body: BinaryIO, size: int) -> None:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Keys have no dots: a ".name.*.tmp" can never be mistaken for a stored file.
        fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as out:
                left = size
                while left > 0:
                    chunk = body.read(min(left, MiB))
                    if not chunk:
                        raise ValueError(f"the body ended after {size - left} of {size} bytes")
                    out.write(chunk)
                    left -= len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
            raise

    async def delete(self, key: str) -> None:
        """Removing a missing key is not an error, as with S3."""
        target = self.path(key)
        try:
            await asyncio.to_thread(target.unlink, missing_ok=True)
        except OSError as e:
            raise StorageUnavailable(f"could not delete {key!r}: {e}") from e

    async def url(self, key: str, expires_in: int, file_name: str, content_type: str) -> str:
        _check_key(key)
        _check_link(expires_in, content_type)
        expires = int(datetime.now(UTC).timestamp()) + expires_in
        return f"{self.base_url_path}/{self.sign(key, expires, content_type, file_name)}"

    def sign(self, key: str, expires: int, content_type: str, file_name: str) -> str:
        """The token of a link valid until ``expires`` (unix seconds)."""
        payload = json.dumps(
            {"k": _check_key(key), "e": expires, "t": content_type, "n": file_name},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        body = _b64(payload)
        return f"{body}.{_b64(self._mac(body))}"

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._secret, body.encode("ascii"), hashlib.sha256).digest()

    def open_signed(self, token: str, now: datetime) -> tuple[Path, str, str]:
        """The file's path, content type and name; ``InvalidSignature`` or ``Expired``.

        The path is not checked for existence (the caller answers 404 for a deleted file).
        """
        body, _, signature = token.partition(".")
        try:
            genuine = hmac.compare_digest(_unb64(signature), self._mac(body))
        except ValueError:  # not base64, or not ASCII
            genuine = False
        if not (body and genuine):
            raise InvalidSignature("the link's signature does not match")
        # Signed with this key, so written by ``sign``: well formed.
        fields = json.loads(_unb64(body))
        if now.timestamp() >= int(fields["e"]):
            raise Expired("the link has expired")
        return self.path(str(fields["k"])), str(fields["t"]), str(fields["n"])


# ------------------------------------------------------------------------------ wiring


class StorageSettings(Protocol):
    """The settings ``build_storage`` reads (``stacklo.config.Settings`` has them)."""

    @property
    def storage_url(self) -> str | None: ...
    @property
    def s3_access_key_id(self) -> str | None: ...
    @property
    def s3_secret_access_key(self) -> str | None: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def secret(self) -> str: ...


_S3_OPTIONS: Final = frozenset({"region", "endpoint_url"})
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def build_storage(settings: StorageSettings) -> ObjectStorage:
    """S3 when ``storage_url`` is ``s3://bucket?region=...&endpoint_url=...``, else the
    ``files`` folder of the data folder, signing links with a key derived from the secret."""
    if settings.storage_url is None:
        key = hmac.new(settings.secret.encode(), b"stacklo-files", hashlib.sha256).digest()
        return LocalStorage(settings.data_dir / "files", key)
    url = urlsplit(settings.storage_url)
    if url.scheme != "s3" or not _BUCKET.fullmatch(url.netloc) or url.path.strip("/"):
        raise ValueError("the storage URL must be s3://bucket?region=...&endpoint_url=...")
    options = {name: values[-1] for name, values in parse_qs(url.query).items()}
    unknown = set(options) - _S3_OPTIONS
    if unknown:
        raise ValueError(f"unknown storage URL options: {', '.join(sorted(unknown))}")
    return S3Storage(
        url.netloc,
        region=options.get("region", "us-east-1"),
        endpoint_url=options.get("endpoint_url"),
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
    )
