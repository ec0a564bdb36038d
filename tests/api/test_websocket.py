"""WebSocket: both subprotocols, the token in connection_init, 4403 for a bad one."""

import json
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.conftest import Server
from tests.helpers import GraphQLHTTP, sign_up

TRANSPORT = "graphql-transport-ws"
LEGACY = "graphql-ws"


async def _recv(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await ws.recv())
    return message


async def test_transport_ws_runs_operations_as_the_token_holder(
    server: Server, client: GraphQLHTTP
) -> None:
    user = await sign_up(client)
    async with websockets.connect(server.ws_url, subprotocols=[TRANSPORT]) as ws:
        assert ws.subprotocol == TRANSPORT
        await ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {user.access}"}}
            )
        )
        assert (await _recv(ws))["type"] == "connection_ack"
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ me { email } }"}})
        )
        message = await _recv(ws)
        assert (message["id"], message["type"]) == ("1", "next")
        assert message["payload"]["data"] == {"me": {"email": user.email}}
        assert (await _recv(ws)) == {"id": "1", "type": "complete"}


async def test_anonymous_socket_is_accepted_but_sees_no_viewer(server: Server) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[TRANSPORT]) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert (await _recv(ws))["type"] == "connection_ack"
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ me { email } }"}})
        )
        assert (await _recv(ws))["payload"]["data"] == {"me": None}


@pytest.mark.parametrize("authorization", ["Bearer not-a-token", "Basic abc", 42])
async def test_bad_token_closes_with_4403(server: Server, authorization: object) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[TRANSPORT]) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": authorization}})
        )
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_revoked_session_token_closes_with_4403(server: Server, client: GraphQLHTTP) -> None:
    user = await sign_up(client)
    await client.data(
        "mutation($t: String!) { logOut(input: {refreshToken: $t}) { success } }",
        {"t": user.refresh},
    )
    async with websockets.connect(server.ws_url, subprotocols=[TRANSPORT]) as ws:
        await ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {user.access}"}}
            )
        )
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


async def test_legacy_graphql_ws_protocol(server: Server, client: GraphQLHTTP) -> None:
    user = await sign_up(client)
    async with websockets.connect(server.ws_url, subprotocols=[LEGACY]) as ws:
        assert ws.subprotocol == LEGACY
        await ws.send(
            json.dumps(
                {"type": "connection_init", "payload": {"authorization": f"Bearer {user.access}"}}
            )
        )
        assert (await _recv(ws))["type"] == "connection_ack"
        # The legacy protocol carries subscriptions only; a query is refused per operation,
        # and the socket stays usable.
        await ws.send(
            json.dumps({"id": "1", "type": "start", "payload": {"query": "{ me { email } }"}})
        )
        data = await _recv(ws)
        while data["type"] == "ka":
            data = await _recv(ws)
        assert data["type"] == "error" and data["id"] == "1"
        await ws.send(json.dumps({"type": "connection_terminate"}))
        await ws.wait_closed()
    assert ws.close_code is not None


async def test_legacy_bad_token_is_refused(server: Server) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[LEGACY]) as ws:
        await ws.send(
            json.dumps({"type": "connection_init", "payload": {"authorization": "Bearer nope"}})
        )
        assert (await _recv(ws))["type"] == "connection_error"
        with pytest.raises(ConnectionClosed):
            await ws.recv()


async def test_subscribe_before_init_closes_with_4401(server: Server) -> None:
    async with websockets.connect(server.ws_url, subprotocols=[TRANSPORT]) as ws:
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": "{ __typename }"}})
        )
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
