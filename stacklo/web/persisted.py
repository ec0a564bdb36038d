"""Persisted queries: Apollo's automatic persisted queries (APQ), and an allowlist mode.

A request may name its operation by hash, ``extensions.persistedQuery = {"version": 1,
"sha256Hash": H}`` (over POST, GET or a socket):

- with the hash only, the operation runs if H is registered (``stacklo persisted-queries
  register``) or was sent with its text before (kept ``STACKLO_APQ_TTL_SECONDS``, in Redis
  when there is one); otherwise the answer is ``PersistedQueryNotFound`` and the client sends
  the hash again with the text, exactly as Apollo's persisted-query link does;
- with the text as well, H must be the text's SHA-256 (``PERSISTED_QUERY_HASH_MISMATCH``
  otherwise), and the text is kept for next time.

``STACKLO_PERSISTED_QUERIES=allowlist`` runs registered operations only: a text whose hash is
not registered is ``PERSISTED_QUERY_NOT_ALLOWED``, and nothing is kept from clients.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from graphql import GraphQLFormattedError

from stacklo.data.persisted import QueryCache, Registered
from stacklo.observability import log

_HASH = re.compile(r"[0-9a-f]{64}")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class PersistedRefusal(Exception):
    """The request's persisted query cannot run; ``error`` says why, as a GraphQL error."""

    def __init__(self, message: str, code: str, status: int = 400):
        super().__init__(message)
        self.error: GraphQLFormattedError = {"message": message, "extensions": {"code": code}}
        self.status = status


class PersistedQueries:
    def __init__(
        self, mode: Literal["apq", "allowlist"], registered: Registered, cache: QueryCache
    ):
        self._mode = mode
        self._registered = registered
        self._cache = cache

    async def resolve(self, query: str | None, extensions: Mapping[str, Any] | None) -> str | None:
        """The text to run: ``query`` itself, or the one its hash names."""
        persisted = (extensions or {}).get("persistedQuery")
        if persisted is None:
            if query is not None and self._mode == "allowlist":
                await self._allowed(query)
            return query
        wanted = self._hash(persisted)
        if query is None:
            found = await self._find(wanted)
            if found is None:
                raise PersistedRefusal("PersistedQueryNotFound", "PERSISTED_QUERY_NOT_FOUND", 200)
            return found
        if sha256(query) != wanted:
            raise PersistedRefusal(
                "The persisted query's sha256Hash is not the SHA-256 of its query.",
                "PERSISTED_QUERY_HASH_MISMATCH",
            )
        if self._mode == "allowlist":
            await self._allowed(query)
        else:
            await self._keep(wanted, query)
        return query

    @staticmethod
    def _hash(persisted: object) -> str:
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            raise PersistedRefusal(
                "persistedQuery must be {version: 1, sha256Hash: <64 hex digits>}.",
                "PERSISTED_QUERY_NOT_SUPPORTED",
            )
        wanted = persisted.get("sha256Hash")
        if not isinstance(wanted, str) or not _HASH.fullmatch(wanted):
            raise PersistedRefusal(
                "persistedQuery.sha256Hash must be 64 lowercase hex digits.", "BAD_REQUEST"
            )
        return wanted

    async def _find(self, wanted: str) -> str | None:
        registered = await self._registered.body(wanted)
        if registered is not None or self._mode == "allowlist":
            return registered
        try:
            return await self._cache.get(wanted)
        except Exception as e:  # Redis away: as if never seen; the client sends the text
            log.warning("apq_cache_unavailable", error=repr(e))
            return None

    async def _keep(self, wanted: str, query: str) -> None:
        try:
            await self._cache.put(wanted, query)
        except Exception as e:  # Redis away: the next hash-only request sends the text again
            log.warning("apq_cache_unavailable", error=repr(e))

    async def _allowed(self, query: str) -> None:
        if await self._registered.body(sha256(query)) is None:
            raise PersistedRefusal(
                "Only registered operations run here.", "PERSISTED_QUERY_NOT_ALLOWED"
            )


class ManifestError(ValueError):
    """A file to register is not an operation manifest or a GraphQL document we can run."""


MANIFEST_FORMAT = "apollo-persisted-query-manifest"


def operations_in(name: str, text: str) -> list[tuple[str, str, str | None]]:
    """(sha256, body, name) of each operation a client file holds.

    A JSON file is an Apollo persisted-query manifest (``@apollo/generate-persisted-query-
    manifest``: ``{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body",
    "name"}]}``), whose bodies are exactly what Apollo Client sends. Any other file is a
    GraphQL document, registered as written and as graphql-js prints it (what a client that
    hashes ``print(document)`` sends). Every body must validate against the served schema: an
    operation that could never run is refused at registration, not in production.
    """
    from graphql import GraphQLError, parse, print_ast, validate

    from stacklo.api import schema

    if name.endswith(".json"):
        try:
            manifest = json.loads(text)
        except ValueError as e:
            raise ManifestError(f"{name}: not JSON: {e}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
            raise ManifestError(f'{name}: a manifest has "format": "{MANIFEST_FORMAT}"')
        found = []
        for entry in manifest.get("operations") or []:
            body = entry.get("body") if isinstance(entry, dict) else None
            if not isinstance(body, str):
                raise ManifestError(f"{name}: every operation needs a body")
            if entry.get("id") not in (None, sha256(body)):
                raise ManifestError(f"{name}: {entry.get('name')}: id is not the body's SHA-256")
            found.append((body, entry.get("name")))
    else:
        try:
            printed = print_ast(parse(text))
        except GraphQLError as e:
            raise ManifestError(f"{name}: {e.message}") from None
        found = [(text, None), (printed, None)] if printed != text else [(text, None)]
    operations = []
    for body, operation_name in found:
        try:
            errors = validate(schema._schema, parse(body))
        except GraphQLError as e:
            errors = [e]
        if errors:
            raise ManifestError(f"{name}: {operation_name or 'operation'}: {errors[0].message}")
        operations.append((sha256(body), body, operation_name or _first_name(body)))
    return operations


def _first_name(body: str) -> str | None:
    match = re.search(r"\b(?:query|mutation|subscription)\s+([_A-Za-z][_0-9A-Za-z]*)", body)
    return match.group(1) if match else None
