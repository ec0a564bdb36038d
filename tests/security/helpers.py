"""Clients for the security suite: signed-in sockets (either way of signing in), funding
through a signed provider webhook, and a raw GraphQL POST that keeps the status and headers."""

from __future__ import annotations

import asyncio
import contextlib
import json
from decimal import Decimal
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from stacklo.integrations.paystack import sign
from tests.helpers import DEPOSIT, GraphQLHTTP, SignedUp, key

TRANSPORT = "graphql-transport-ws"


async def open_socket(
    ws_url: str, token: str | None, via: str = "init", protocol: str = TRANSPORT
) -> ClientConnection:
    """A socket signed in with ``token`` through ``connection_init`` ("init") or through the
    handshake's Authorization header ("header"); acknowledged."""
    headers = {"Authorization": f"Bearer {token}"} if token and via == "header" else {}
    ws = await websockets.connect(ws_url, subprotocols=[protocol], additional_headers=headers)
    payload = {"authorization": f"Bearer {token}"} if token and via == "init" else {}
    await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
    ack = json.loads(await ws.recv())
    assert ack["type"] == "connection_ack", ack
    return ws


async def operate(
    ws: ClientConnection, op_id: str, query: str, variables: dict[str, Any] | None = None
) -> None:
    message = {"id": op_id, "type": "subscribe", "payload": {"query": query}}
    if variables:
        message["payload"]["variables"] = variables
    with contextlib.suppress(ConnectionClosed):  # closed already: the caller reads the close
        await ws.send(json.dumps(message))


async def answer(ws: ClientConnection, within: float = 10) -> dict[str, Any]:
    """The next message that is not a ping."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), within))
        if message.get("type") not in ("ping", "pong", "ka"):
            return message


async def close_code(ws: ClientConnection, within: float = 10) -> int | None:
    """Read until the server closes the socket; its close code (None: it stayed open)."""
    try:
        async with asyncio.timeout(within):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        return None


async def fund(
    client: GraphQLHTTP, base_url: str, secret: str, user: SignedUp, amount: str
) -> None:
    """startDeposit with the provider, then the provider's signed charge.success webhook."""
    wallet = user.user["wallets"][0]
    started = (
        await client.data(
            DEPOSIT,
            {"i": {"walletId": wallet["id"], "amount": amount, "idempotencyKey": key()}},
            token=user.access,
        )
    )["startDeposit"]
    assert started["userErrors"] == [], started
    body = json.dumps(
        {
            "event": "charge.success",
            "data": {
                "id": 1000 + len(started["transaction"]["reference"]),
                "reference": started["transaction"]["reference"],
                "amount": int(Decimal(amount) * 100),
                "currency": started["transaction"]["amount"]["currency"],
                "status": "success",
            },
        }
    ).encode()
    async with httpx.AsyncClient(base_url=base_url) as http:
        delivered = await http.post(
            "/webhooks/paystack",
            content=body,
            headers={
                "content-type": "application/json",
                "x-paystack-signature": sign(secret, body),
            },
        )
    assert delivered.json() == {"status": "credited"}, delivered.text


async def raw(
    client: GraphQLHTTP,
    query: str,
    variables: dict[str, Any] | None = None,
    token: str | None = None,
) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return await client.http.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
