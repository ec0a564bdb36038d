"""Persisted queries: Apollo's automatic persisted queries over POST, GET and a socket, with
Apollo Client's own PersistedQueryLink, and the allowlist mode with its registration CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import websockets
from graphql import parse, print_ast

from tests.clients import run_node
from tests.conftest import Databases, Server, own_server
from tests.helpers import GraphQLHTTP, sign_up

ME = "query Me { me { id email } }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def persisted(text: str) -> dict[str, object]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(text)}}


async def test_hash_only_is_not_found_then_the_text_registers_it(server: Server) -> None:
    query = f"query Unseen{uuid.uuid4().hex} {{ __typename }}"
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        first = await http.post("/graphql", json={"extensions": persisted(query)})
        assert first.status_code == 200
        assert first.json()["errors"][0]["message"] == "PersistedQueryNotFound"
        assert first.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert "data" not in first.json()

        strict = await http.post(
            "/graphql",
            json={"extensions": persisted(query)},
            headers={"accept": "application/graphql-response+json"},
        )
        assert strict.status_code == 400
        assert strict.headers["content-type"].startswith("application/graphql-response+json")

        sent = await http.post("/graphql", json={"query": query, "extensions": persisted(query)})
        assert sent.json()["data"] == {"__typename": "Query"}

        by_get = await http.get("/graphql", params={"extensions": json.dumps(persisted(query))})
        assert by_get.status_code == 200 and by_get.json()["data"] == {"__typename": "Query"}


async def test_a_hash_that_is_not_the_texts_is_refused_and_not_kept(server: Server) -> None:
    query = "{ __typename }"
    wrong = {"persistedQuery": {"version": 1, "sha256Hash": sha("something else")}}
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        refused = await http.post("/graphql", json={"query": query, "extensions": wrong})
        assert refused.status_code == 400
        assert refused.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"
        # Nothing was kept under the wrong hash.
        after = await http.post("/graphql", json={"extensions": wrong})
        assert after.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        for bad in ({"version": 2, "sha256Hash": sha(query)}, {"version": 1, "sha256Hash": "x"}):
            answer = await http.post("/graphql", json={"extensions": {"persistedQuery": bad}})
            assert answer.status_code == 400
            assert answer.json()["errors"][0]["extensions"]["code"] in (
                "PERSISTED_QUERY_NOT_SUPPORTED",
                "BAD_REQUEST",
            )


async def test_apollo_clients_persisted_query_link(server: Server) -> None:
    client = GraphQLHTTP(server.base_url)
    user = await sign_up(client)
    await client.aclose()
    report = await run_node("apq.mjs", server.base_url + "/graphql", user.access)
    first, second = report["results"]
    assert first["error"] is None and second["error"] is None, report
    assert first["data"]["me"]["email"] == user.email
    assert second["data"] == first["data"]
    wire = report["wire"]
    # Client one: the hash by GET (unknown: Apollo Client 4 accepts graphql-response+json, so
    # a 400 without data), then hash and text by POST. Client two: the hash by GET, found.
    assert [(w["method"], w["sentQuery"], w["status"]) for w in wire] == [
        ("GET", False, 400),
        ("POST", True, 200),
        ("GET", False, 200),
    ], wire
    assert wire[0]["errorCodes"] == ["PERSISTED_QUERY_NOT_FOUND"]
    assert wire[2]["errorCodes"] == []
    assert len({w["sentHash"] for w in wire}) == 1


async def test_a_socket_runs_a_persisted_query_by_its_hash(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        await http.post("/graphql", json={"query": ME, "extensions": persisted(ME)})
    async with websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        unknown = {"persistedQuery": {"version": 1, "sha256Hash": sha("never sent")}}
        for n, extensions in enumerate((persisted(ME), unknown)):
            subscribe = {"id": str(n), "type": "subscribe", "payload": {"extensions": extensions}}
            await ws.send(json.dumps(subscribe))
            message = json.loads(await ws.recv())
            if n == 0:
                assert message["type"] == "next", message
                assert message["payload"]["data"] == {"me": None}
                assert json.loads(await ws.recv())["type"] == "complete"
            else:
                assert message["type"] == "error"
                assert message["payload"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


@pytest.fixture(scope="module")
def allowlist(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with own_server(
        databases, tmp_path_factory, "allowlist", STACKLO_PERSISTED_QUERIES="allowlist"
    ) as running:
        yield running


def register(server: Server, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stacklo", "persisted-queries", "register", *map(str, files)],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_allowlist_runs_registered_operations_only(allowlist: Server, tmp_path: Path) -> None:
    body = "query MyEmail {\n  me {\n    email\n  }\n}"
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": sha(body), "body": body, "name": "MyEmail", "type": "query"}],
            }
        )
    )
    document = tmp_path / "typename.graphql"
    document.write_text("query  Typename { __typename }")

    async with httpx.AsyncClient(base_url=allowlist.base_url) as http:
        before = await http.post("/graphql", json={"query": body})
        assert before.status_code == 400
        assert before.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"

        result = register(allowlist, manifest, document)
        assert result.returncode == 0, result.stderr
        assert "3 operations registered (3 new)" in result.stdout
        again = register(allowlist, manifest)
        assert "(0 new)" in again.stdout

        by_hash = await http.post("/graphql", json={"extensions": persisted(body)})
        assert by_hash.json()["data"] == {"me": None}
        by_text = await http.post("/graphql", json={"query": body})
        assert by_text.json()["data"] == {"me": None}
        printed = print_ast(parse(document.read_text()))
        for text in (document.read_text(), printed):
            answer = await http.post("/graphql", json={"query": text})
            assert answer.json()["data"] == {"__typename": "Query"}, text

        # A text sent with its hash is not kept in allowlist mode.
        other = "{ __typename }"
        sent = await http.post("/graphql", json={"query": other, "extensions": persisted(other)})
        assert sent.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_ALLOWED"
        later = await http.post("/graphql", json={"extensions": persisted(other)})
        assert later.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"


def test_registration_refuses_what_could_never_run(allowlist: Server, tmp_path: Path) -> None:
    broken = tmp_path / "broken.graphql"
    broken.write_text("query { me { noSuchField } }")
    result = register(allowlist, broken)
    assert result.returncode == 1
    assert "noSuchField" in result.stderr
    lying = tmp_path / "lying.json"
    lying.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "operations": [{"id": "0" * 64, "body": "{ __typename }", "name": "X"}],
            }
        )
    )
    result = register(allowlist, lying)
    assert result.returncode == 1 and "SHA-256" in result.stderr
