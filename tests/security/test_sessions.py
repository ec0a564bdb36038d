"""HIGH 1: a WebSocket never outlives its session.

After logOut, after changePassword (for the other sessions) and at token expiry, the next
operation on a socket does not run and the socket is closed with 4403, whichever way it was
signed in, and on whichever instance it is open.
"""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
import websockets

from tests.conftest import Server
from tests.helpers import (
    LOG_IN,
    PASSWORD,
    SEND,
    GraphQLHTTP,
    SignedUp,
    admin_token,
    key,
    sign_up,
    unique_email,
    verify_identity,
    wallets,
)
from tests.security.conftest import PAYSTACK_SECRET, Cluster, new_address
from tests.security.helpers import answer, close_code, fund, open_socket, operate

LOG_OUT = "mutation($t: String!) { logOut(input: {refreshToken: $t}) { success } }"
CHANGE_PASSWORD = """mutation($i: ChangePasswordInput!) {
  changePassword(input: $i) { success userErrors { code } } }"""
WALLET_SUB = "subscription { walletUpdated { wallet { balance { amount } } } }"

WAYS = ["init", "header"]


async def _two_people(cluster: Cluster) -> tuple[GraphQLHTTP, SignedUp, SignedUp]:
    client = GraphQLHTTP(cluster.a.base_url, client_address=new_address())
    alice, bob = await sign_up(client), await sign_up(client)
    await fund(client, cluster.a.base_url, PAYSTACK_SECRET, alice, "100")
    return client, alice, bob


def _send_to(alice: SignedUp, bob: SignedUp) -> dict[str, object]:
    return {
        "i": {
            "fromWalletId": alice.user["wallets"][0]["id"],
            "to": {"email": bob.email},
            "amount": "10.00",
            "idempotencyKey": key(),
        }
    }


async def _balance(client: GraphQLHTTP, user: SignedUp) -> str:
    amount: str = (await wallets(client, user))["NGN"]["balance"]["amount"]
    return amount


@pytest.mark.parametrize("via", WAYS)
async def test_after_log_out_the_socket_runs_nothing_and_closes(
    production: Cluster, via: str
) -> None:
    client, alice, bob = await _two_people(production)
    ws = await open_socket(production.a.ws_url, alice.access, via)
    await operate(ws, "1", "{ me { email } }")
    assert (await answer(ws))["payload"]["data"]["me"]["email"] == alice.email

    await client.data(LOG_OUT, {"t": alice.refresh})
    await operate(ws, "2", SEND, _send_to(alice, bob))

    assert await close_code(ws) == 4403
    assert await _balance(client, bob) == "0.00"  # the transfer never ran
    await client.aclose()


@pytest.mark.parametrize("via", WAYS)
async def test_log_out_closes_a_socket_holding_a_subscription(
    production: Cluster, via: str
) -> None:
    client, alice, _ = await _two_people(production)
    ws = await open_socket(production.a.ws_url, alice.access, via)
    await operate(ws, "1", WALLET_SUB)
    await client.data(LOG_OUT, {"t": alice.refresh})
    assert await close_code(ws) == 4403  # pushed: nothing was sent on the socket
    await client.aclose()


@pytest.mark.parametrize("via", WAYS)
async def test_change_password_closes_the_other_sessions_sockets(
    production: Cluster, via: str
) -> None:
    client, alice, bob = await _two_people(production)
    other = await open_socket(production.a.ws_url, alice.access, via)  # the sign-up session
    await operate(other, "1", WALLET_SUB)
    current = (await client.data(LOG_IN, {"input": {"email": alice.email, "password": PASSWORD}}))[
        "logIn"
    ]["session"]["accessToken"]
    mine = await open_socket(production.a.ws_url, current, via)

    changed = await client.data(
        CHANGE_PASSWORD,
        {"i": {"currentPassword": PASSWORD, "newPassword": "a whole new phrase 42"}},
        token=current,
    )
    assert changed["changePassword"] == {"success": True, "userErrors": []}
    await operate(other, "2", SEND, _send_to(alice, bob))
    assert await close_code(other) == 4403
    # The session that changed the password keeps its socket.
    await operate(mine, "1", "{ me { email } }")
    assert (await answer(mine))["payload"]["data"]["me"]["email"] == alice.email
    assert await _balance(client, bob) == "0.00"
    await mine.close()
    await client.aclose()


async def test_log_out_on_one_instance_closes_the_socket_on_another(
    production: Cluster,
) -> None:
    client, alice, _ = await _two_people(production)
    ws = await open_socket(production.b.ws_url, alice.access, "init")
    await operate(ws, "1", WALLET_SUB)
    await client.data(LOG_OUT, {"t": alice.refresh})  # on instance a
    assert await close_code(ws) == 4403
    await client.aclose()


async def test_log_out_on_one_instance_ends_the_token_on_another_that_remembered_it(
    production: Cluster,
) -> None:
    client, alice, _ = await _two_people(production)
    other = GraphQLHTTP(production.b.base_url, client_address=new_address())
    me = "{ me { email } }"
    assert (await other.post(me, token=alice.access))["data"]["me"]["email"] == alice.email
    await client.data(LOG_OUT, {"t": alice.refresh})  # on instance a
    # b forgets the viewer as the ended-sessions event arrives (milliseconds); without the
    # event it would serve it for the viewer cache's whole lifetime (10 s).
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        body = await other.post(me, token=alice.access)
        if body.get("errors"):
            break
        assert asyncio.get_running_loop().time() < deadline, "b still serves the ended session"
        await asyncio.sleep(0.05)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    await other.aclose()
    await client.aclose()


async def test_a_users_new_identity_status_reaches_the_instance_that_remembered_them(
    production: Cluster,
) -> None:
    client, alice, _ = await _two_people(production)
    email = unique_email("admin")
    made = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "stacklo", "create-admin", "--email", email),
        *("--password", PASSWORD),
        env=production.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(made.communicate(), 60)
    assert made.returncode == 0, err
    admin = await admin_token(client, (email, PASSWORD))
    other = GraphQLHTTP(production.b.base_url, client_address=new_address())
    status = "{ me { kycStatus } }"
    assert (await other.data(status, token=alice.access))["me"]["kycStatus"] == "PENDING"
    await verify_identity(client, alice, admin)  # on instance a
    # b forgets the remembered viewer as the changed-user event arrives.
    deadline = asyncio.get_running_loop().time() + 5
    while (await other.data(status, token=alice.access))["me"]["kycStatus"] != "VERIFIED":
        assert asyncio.get_running_loop().time() < deadline, "b still serves the old status"
        await asyncio.sleep(0.05)
    await other.aclose()
    await client.aclose()


@pytest.mark.parametrize("via", WAYS)
async def test_an_expired_token_closes_the_socket(tight: Server, via: str) -> None:
    client = GraphQLHTTP(tight.base_url, client_address=new_address())
    user = await sign_up(client)
    ws = await open_socket(tight.ws_url, user.access, via)
    await operate(ws, "1", "{ me { email } }")
    assert (await answer(ws))["payload"]["data"]["me"]["email"] == user.email
    assert await close_code(ws, within=15) == 4403  # tokens live 5 s on this server
    await client.aclose()


async def test_a_socket_cannot_open_with_an_ended_session(production: Cluster) -> None:
    client, alice, _ = await _two_people(production)
    await client.data(LOG_OUT, {"t": alice.refresh})
    for via in WAYS:
        headers = {"Authorization": f"Bearer {alice.access}"} if via == "header" else {}
        async with websockets.connect(
            production.a.ws_url, subprotocols=["graphql-transport-ws"], additional_headers=headers
        ) as ws:
            payload = {"authorization": f"Bearer {alice.access}"} if via == "init" else {}
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            assert await close_code(ws) == 4403
    await client.aclose()
