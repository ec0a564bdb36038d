"""MEDIUM 5 and 7: bounded bodies, bounded sockets.

A body past its limit is 413 with a JSON error, whether it says its length or streams; the
webhook is refused before its signature is even checked; a multipart request needs a header
a browser form cannot send. One address holds a bounded number of sockets; a socket that is
not signed in and does nothing is closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from tests.conftest import Server
from tests.security.conftest import Cluster
from tests.security.helpers import TRANSPORT, close_code, open_socket

LIMIT = 256 * 1024


def _too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


async def test_a_large_body_is_413_before_it_is_read(production: Cluster) -> None:
    body = json.dumps({"query": "{ __typename }", "variables": {"x": "a" * (100 * 1024 * 1024)}})
    async with httpx.AsyncClient(base_url=production.a.base_url, timeout=30) as http:
        _too_large(
            await http.post("/graphql", content=body, headers={"content-type": "application/json"})
        )


async def test_a_streamed_body_is_cut_off_at_the_limit(production: Cluster) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"query": "{ __typename }", "variables": {"x": "'
        for _ in range(4 * LIMIT // 65536):
            sent += 65536
            yield b"a" * 65536
        yield b'"}}'

    async with httpx.AsyncClient(base_url=production.a.base_url, timeout=30) as http:
        response = await http.post(
            "/graphql", content=chunks(), headers={"content-type": "application/json"}
        )
    _too_large(response)  # no content-length: counted while it streamed


async def test_the_webhook_refuses_a_large_body_before_checking_its_signature(
    production: Cluster,
) -> None:
    async with httpx.AsyncClient(base_url=production.a.base_url) as http:
        response = await http.post(
            "/webhooks/paystack",
            content=b"{" + b" " * (128 * 1024) + b"}",
            headers={"content-type": "application/json", "x-paystack-signature": "x"},
        )
    _too_large(response)


async def test_multipart_needs_a_preflight_header(production: Cluster) -> None:
    files = {
        "operations": (None, json.dumps({"query": "{ __typename }", "variables": {}})),
        "map": (None, "{}"),
    }
    async with httpx.AsyncClient(base_url=production.a.base_url) as http:
        forged = await http.post("/graphql", files=files)
        assert forged.status_code == 400
        assert "Apollo-Require-Preflight" in forged.json()["errors"][0]["message"]
        honest = await http.post(
            "/graphql", files=files, headers={"apollo-require-preflight": "true"}
        )
        assert honest.status_code == 200 and honest.json()["data"] == {"__typename": "Query"}


async def test_one_address_holds_a_bounded_number_of_sockets(tight: Server) -> None:
    held = [await websockets.connect(tight.ws_url, subprotocols=[TRANSPORT]) for _ in range(3)]
    try:
        with pytest.raises(InvalidStatus) as refused:
            await websockets.connect(tight.ws_url, subprotocols=[TRANSPORT])
        assert refused.value.response.status_code == 429
        assert "retry-after" in {k.lower() for k in refused.value.response.headers}
    finally:
        for ws in held:
            await ws.close()
    await asyncio.sleep(0.2)  # the server has let go of them
    again = await websockets.connect(tight.ws_url, subprotocols=[TRANSPORT])
    await again.close()


async def test_a_socket_that_is_not_signed_in_and_does_nothing_is_closed(tight: Server) -> None:
    ws = await open_socket(tight.ws_url, None)
    assert await close_code(ws, within=10) == 4408  # idle 1 s on this server
