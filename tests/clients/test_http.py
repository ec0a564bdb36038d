"""GraphQL over HTTP as clients negotiate it: graphql-http's server audit, CORS preflights,
the WebSocket Origin check, and gzip."""

from __future__ import annotations

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.clients import run_node
from tests.conftest import Server

INTROSPECTION = """query { __schema { types { name description fields { name description
  args { name description type { name kind ofType { name kind } } } } } } }"""


async def test_graphql_http_audit_passes_every_must_and_should(server: Server) -> None:
    results = await run_node("audit.mjs", server.base_url + "/graphql")
    assert len(results) >= 36  # the MUSTs and SHOULDs of graphql-http 1.23
    failing = [r for r in results if r["status"] != "ok"]
    assert failing == [], failing


LOCAL_APP = "http://localhost:5173"  # one of the default local development origins


async def test_a_preflight_from_an_allowed_origin_is_answered(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        preflight = await http.options(
            "/graphql",
            headers={
                "origin": LOCAL_APP,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == LOCAL_APP
        allowed = preflight.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
        assert "POST" in preflight.headers["access-control-allow-methods"]
        # Tokens go in the Authorization header, never cookies: no credentials mode.
        assert "access-control-allow-credentials" not in preflight.headers

        actual = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": LOCAL_APP}
        )
        assert actual.headers["access-control-allow-origin"] == LOCAL_APP
        exposed = actual.headers["access-control-expose-headers"].lower()
        assert "ratelimit" in exposed and "retry-after" in exposed


async def test_a_preflight_from_elsewhere_is_refused(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        preflight = await http.options(
            "/graphql",
            headers={
                "origin": "https://evil.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization",
            },
        )
        assert preflight.status_code == 400
        assert "access-control-allow-origin" not in preflight.headers
        simple = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"origin": "https://evil.example"}
        )
        assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize(
    ("origin", "opens"),
    [(LOCAL_APP, True), (None, True), ("https://evil.example", False)],
)
async def test_sockets_check_the_same_origins(
    server: Server, origin: str | None, opens: bool
) -> None:
    headers = {"origin": origin} if origin else {}
    if opens:
        async with websockets.connect(
            server.ws_url, subprotocols=["graphql-transport-ws"], additional_headers=headers
        ) as ws:
            assert ws.subprotocol == "graphql-transport-ws"
    else:
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(
                server.ws_url, subprotocols=["graphql-transport-ws"], additional_headers=headers
            ):
                pass
        assert refused.value.response.status_code == 403


async def test_large_answers_are_gzipped_for_clients_that_ask(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        asked = await http.post(
            "/graphql", json={"query": INTROSPECTION}, headers={"accept-encoding": "gzip"}
        )
        assert asked.status_code == 200
        assert asked.headers["content-encoding"] == "gzip"
        assert "accept-encoding" in asked.headers["vary"].lower()
        wire = asked.num_bytes_downloaded
        assert wire * 4 < len(asked.content), (wire, len(asked.content))
        assert asked.json()["data"]["__schema"]["types"]

        plain = await http.post(
            "/graphql", json={"query": INTROSPECTION}, headers={"accept-encoding": "identity"}
        )
        assert "content-encoding" not in plain.headers
        assert plain.content == asked.content

        small = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"accept-encoding": "gzip"}
        )
        assert "content-encoding" not in small.headers  # below the threshold: not worth it


async def test_graphiql_assets_are_gzipped(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        scripts = [p for p in page.text.split('"') if p.endswith(".js") and p.startswith("/")]
        assert scripts
        for script in scripts:
            asset = await http.get(script, headers={"accept-encoding": "gzip"})
            assert asset.headers["content-encoding"] == "gzip", script
            assert asset.num_bytes_downloaded * 2 < len(asset.content), script
