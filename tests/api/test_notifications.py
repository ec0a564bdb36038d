"""Notifications end to end, over real HTTP and WebSocket against a real server: the notifier
(run by the server's in-process worker) turns outbox events into notifications, which reach
their user on notificationReceived (live, or replayed after `after`) and in me.notifications.

The notifier is asynchronous (it wakes every second), so tests poll the API with a deadline
for what it writes. To show that nothing *more* was written, they wait for a later event of
someone else's (a barrier): the notifier reads events in outbox order, so once the barrier's
notification exists, every earlier event has been fully handled.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
import websockets
from gql.transport.exceptions import TransportQueryError
from websockets.typing import Subprotocol

from tests.api.test_subscriptions import live, next_event
from tests.conftest import Server
from tests.helpers import (
    REVIEW_KYC,
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    send,
    settled,
    sign_up,
)

FIELDS = "id kind title body read createdAt"
SUB = f"subscription($after: ID) {{ notificationReceived(after: $after) {{ {FIELDS} }} }}"
FEED = f"""query($first: Int, $after: String, $unread: Boolean!) {{ me {{
  unreadNotificationCount
  notifications(first: $first, after: $after, unreadOnly: $unread) {{
    pageInfo {{ hasNextPage endCursor }} edges {{ cursor node {{ {FIELDS} }} }} }} }} }}"""
COUNT = "{ me { unreadNotificationCount } }"
MARK = """mutation($ids: [ID!]) { markNotificationsRead(input: {ids: $ids}) {
  updatedCount userErrors { code message field } } }"""
SET_PREFS = """mutation($email: Boolean, $sms: Boolean) {
  setNotificationPreferences(input: {email: $email, sms: $sms}) {
    preferences { email sms } userErrors { code message field } } }"""
PREFS = "{ me { notificationPreferences { email sms } } }"
NODE = "query($id: ID!) { node(id: $id) { __typename ... on Notification { id kind body } } }"

WITHIN = 20.0  # seconds the notifier (1 s interval) and the relay get before a poll gives up


def global_id(type_name: str, raw: object) -> str:
    return base64.b64encode(f"{type_name}:{raw}".encode()).decode()


async def feed(
    client: GraphQLHTTP, user: SignedUp, *, unread_only: bool = False, first: int = 100
) -> list[dict[str, Any]]:
    """The user's notifications, newest first (one page of up to ``first``)."""
    me = (await client.data(FEED, {"first": first, "unread": unread_only}, token=user.access))["me"]
    return [edge["node"] for edge in me["notifications"]["edges"]]


async def unread(client: GraphQLHTTP, user: SignedUp) -> int:
    count: int = (await client.data(COUNT, token=user.access))["me"]["unreadNotificationCount"]
    return count


async def kinds_of(client: GraphQLHTTP, user: SignedUp, *kinds: str) -> list[dict[str, Any]]:
    """Poll until the user has at least one notification of each of ``kinds`` (counted with
    multiplicity); the whole feed, newest first."""
    deadline = time.monotonic() + WITHIN
    while True:
        found = await feed(client, user)
        have = [n["kind"] for n in found]
        if all(have.count(k) >= kinds.count(k) for k in kinds):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"wanted {kinds}, the feed has {have} after {WITHIN} s")
        await asyncio.sleep(0.1)


async def barrier(client: GraphQLHTTP) -> None:
    """Return once the notifier has handled every event committed before this call: a new
    user's deposit is a later outbox event, and its notification is written after theirs."""
    someone = await sign_up(client, fullName="Barrier Person")
    await deposit(client, someone, "1")
    await kinds_of(client, someone, "deposit.credited")


async def funded(client: GraphQLHTTP, server: Server, amount: str, **kw: Any) -> SignedUp:
    """A user with money whose deposit notification is written and already published, so a
    subscription opened afterwards does not see it."""
    user = await sign_up(client, **kw)
    await deposit(client, user, amount)
    await kinds_of(client, user, "deposit.credited")
    await settled(server.database_url)
    return user


def reference(sent: dict[str, Any]) -> str:
    assert sent["userErrors"] == [], sent
    ref: str = sent["transaction"]["reference"]
    return ref


def code_of(error: TransportQueryError) -> str:
    assert error.errors, error
    code: str = error.errors[0]["extensions"]["code"]
    return code


# --------------------------------------------------------------- notificationReceived


async def test_a_transfer_reaches_both_parties_live_exactly_once(
    server: Server, client: GraphQLHTTP
) -> None:
    alice = await funded(client, server, "100", fullName="Alice Sender")
    bob = await sign_up(client, fullName="Bob Receiver")
    async with (
        live(server.ws_url, bob.access, SUB) as bobs,
        live(server.ws_url, alice.access, SUB) as alices,
    ):
        ref = reference(await send(client, alice, {"email": bob.email}, "25.50"))
        got = (await next_event(bobs, wait=WITHIN))["notificationReceived"]
        assert (got["kind"], got["title"], got["read"]) == (
            "transfer.received",
            "Money received",
            False,
        )
        assert got["body"] == f"Alice S. sent you 25.50 NGN (reference {ref})."
        mine = (await next_event(alices, wait=WITHIN))["notificationReceived"]
        assert (mine["kind"], mine["title"]) == ("transfer.sent", "Transfer sent")
        assert mine["body"] == f"You sent 25.50 NGN to Bob R. (reference {ref})."

        # Exactly one each: the next thing either socket carries is the next transfer's.
        later = reference(await send(client, alice, {"email": bob.email}, "1"))
        for queue, kind in ((bobs, "transfer.received"), (alices, "transfer.sent")):
            following = (await next_event(queue, wait=WITHIN))["notificationReceived"]
            assert following["kind"] == kind and later in following["body"], following

    # What was pushed is what was stored, under the same id.
    stored = await feed(client, bob)
    assert [(n["id"], n["body"]) for n in stored][1] == (got["id"], got["body"])
    assert [n["kind"] for n in stored] == ["transfer.received", "transfer.received"]


async def test_resuming_after_the_last_received_replays_exactly_what_was_missed(
    server: Server, client: GraphQLHTTP
) -> None:
    alice = await funded(client, server, "100", fullName="Alice Sender")
    bob = await sign_up(client, fullName="Bob Receiver")
    async with live(server.ws_url, bob.access, SUB) as queue:
        first = reference(await send(client, alice, {"email": bob.email}, "1"))
        received = (await next_event(queue, wait=WITHIN))["notificationReceived"]
        assert first in received["body"]

    # Disconnected: two more are written meanwhile, one notifier round apart.
    missed = []
    for amount, count in (("2", 2), ("3", 3)):
        missed.append(reference(await send(client, alice, {"email": bob.email}, amount)))
        await kinds_of(client, bob, *["transfer.received"] * count)
    stored = await feed(client, bob)  # newest first
    assert [n["id"] for n in stored][2] == received["id"]

    async with live(server.ws_url, bob.access, SUB, {"after": received["id"]}) as queue:
        replayed = [(await next_event(queue, wait=WITHIN))["notificationReceived"] for _ in missed]
        assert [n["id"] for n in replayed] == [stored[1]["id"], stored[0]["id"]]
        assert [ref in n["body"] for n, ref in zip(replayed, missed, strict=True)] == [True, True]
        # Then live, with nothing repeated at the seam: the next one is the fresh one.
        fresh = reference(await send(client, alice, {"email": bob.email}, "4"))
        following = (await next_event(queue, wait=WITHIN))["notificationReceived"]
        assert fresh in following["body"] and following["id"] not in {n["id"] for n in stored}


async def test_an_unknown_foreign_or_malformed_after_is_cursor_expired(
    server: Server, client: GraphQLHTTP
) -> None:
    alice = await funded(client, server, "100", fullName="Alice Sender")
    bob = await sign_up(client)
    await send(client, alice, {"email": bob.email}, "5")
    alices_own = (await kinds_of(client, alice, "transfer.sent"))[0]["id"]
    bobs_own = (await kinds_of(client, bob, "transfer.received"))[0]["id"]
    await settled(server.database_url)  # both positioned: a refusal is about whose, not when
    for after in (
        global_id("Notification", uuid.uuid4()),  # unknown
        alices_own,  # someone else's
        "garbage",  # malformed
        global_id("Notification", "not-a-uuid"),
        bob.id,  # a global id, of another type
    ):
        async with live(server.ws_url, bob.access, SUB, {"after": after}) as queue:
            with pytest.raises(TransportQueryError) as refused:
                await next_event(queue)
        assert code_of(refused.value) == "CURSOR_EXPIRED", after
    # While bob's own is a cursor: the refusals above are about the cursor, not the viewer.
    async with live(server.ws_url, bob.access, SUB, {"after": bobs_own}) as queue:
        await send(client, alice, {"email": bob.email}, "6")
        assert "6.00 NGN" in (await next_event(queue, wait=WITHIN))["notificationReceived"]["body"]


# ------------------------------------------------------------------ feed and badge


async def test_feed_badge_and_marking_read(server: Server, client: GraphQLHTTP) -> None:
    alice = await funded(client, server, "100", fullName="Alice Sender")
    bob = await sign_up(client)
    refs = []
    for n in (1, 2, 3):  # one notifier round each, so each is written after the one before
        refs.append(reference(await send(client, alice, {"email": bob.email}, str(n))))
        await kinds_of(client, bob, *["transfer.received"] * n)
    await barrier(client)

    notes = await feed(client, bob)
    assert [n["kind"] for n in notes] == ["transfer.received"] * 3
    assert [ref in n["body"] for n, ref in zip(notes, reversed(refs), strict=True)] == [True] * 3
    written = [datetime.fromisoformat(n["createdAt"]) for n in notes]
    assert written == sorted(written, reverse=True) and len(set(written)) == 3
    assert not any(n["read"] for n in notes)
    assert await unread(client, bob) == 3

    # Pages of two, then the rest: same order, nothing lost or repeated.
    page = (await client.data(FEED, {"first": 2, "unread": False}, token=bob.access))["me"]
    connection = page["notifications"]
    assert [e["node"]["id"] for e in connection["edges"]] == [n["id"] for n in notes[:2]]
    assert connection["pageInfo"]["hasNextPage"] is True
    rest = (
        await client.data(
            FEED,
            {"first": 2, "after": connection["pageInfo"]["endCursor"], "unread": False},
            token=bob.access,
        )
    )["me"]["notifications"]
    assert [e["node"]["id"] for e in rest["edges"]] == [notes[2]["id"]]
    assert rest["pageInfo"]["hasNextPage"] is False

    alices = await feed(client, alice)
    alices_unread = await unread(client, alice)
    assert alices_unread == len(alices) == 4  # deposit.credited and three transfer.sent
    oldest = notes[2]["id"]
    marked = (
        await client.data(MARK, {"ids": [oldest, alices[0]["id"], "garbage"]}, token=bob.access)
    )["markNotificationsRead"]
    assert marked == {"updatedCount": 1, "userErrors": []}
    assert await unread(client, bob) == 2
    assert [n["read"] for n in await feed(client, bob)] == [False, False, True]
    assert await unread(client, alice) == alices_unread  # alice's own was not touched
    assert not any(n["read"] for n in await feed(client, alice))
    too_many = (await client.data(MARK, {"ids": [oldest] * 501}, token=bob.access))[
        "markNotificationsRead"
    ]
    assert [(e["code"], e["field"]) for e in too_many["userErrors"]] == [
        ("INVALID_INPUT", ["input", "ids"])
    ]
    assert too_many["updatedCount"] in (0, None)
    again = (await client.data(MARK, {"ids": [oldest]}, token=bob.access))["markNotificationsRead"]
    assert again["updatedCount"] == 0  # already read: not counted twice

    unread_only = await feed(client, bob, unread_only=True)
    assert [n["id"] for n in unread_only] == [notes[0]["id"], notes[1]["id"]]

    everything = (await client.data(MARK, {"ids": None}, token=bob.access))["markNotificationsRead"]
    assert everything == {"updatedCount": 2, "userErrors": []}
    assert await unread(client, bob) == 0
    assert await feed(client, bob, unread_only=True) == []
    assert [n["read"] for n in await feed(client, bob)] == [True, True, True]
    assert await unread(client, alice) == alices_unread


async def test_a_received_transfer_notifies_the_receiver_exactly_once(
    server: Server, client: GraphQLHTTP
) -> None:
    alice = await funded(client, server, "100", fullName="Alice Sender")
    bob = await sign_up(client)
    ref = reference(await send(client, alice, {"email": bob.email}, "7"))
    await kinds_of(client, bob, "transfer.received")
    await settled(server.database_url)
    await barrier(client)  # the notifier is past the transfer: anything more would show now

    notes = await feed(client, bob)
    assert [(n["kind"], ref in n["body"]) for n in notes] == [("transfer.received", True)]
    assert await unread(client, bob) == 1
    sent = [n for n in await feed(client, alice) if n["kind"] == "transfer.sent"]
    assert [ref in n["body"] for n in sent] == [True]

    mine = notes[0]["id"]
    own = (await client.data(NODE, {"id": mine}, token=bob.access))["node"]
    assert own == {"__typename": "Notification", "id": mine, "kind": "transfer.received"} | {
        "body": notes[0]["body"]
    }
    assert (await client.data(NODE, {"id": mine}, token=alice.access))["node"] is None
    assert (await client.data(NODE, {"id": mine}))["node"] is None  # anonymous


# --------------------------------------------------------------------- preferences


async def test_preferences_round_trip(client: GraphQLHTTP) -> None:
    user = await sign_up(client)

    async def stored() -> dict[str, bool]:
        prefs: dict[str, bool] = (await client.data(PREFS, token=user.access))["me"][
            "notificationPreferences"
        ]
        return prefs

    assert await stored() == {"email": True, "sms": False}  # the defaults
    for sent, expected in (
        ({"sms": True}, {"email": True, "sms": True}),  # a null field keeps its value
        ({"email": False}, {"email": False, "sms": True}),
        ({"email": False, "sms": False}, {"email": False, "sms": False}),
        ({}, {"email": False, "sms": False}),
        ({"email": True, "sms": True}, {"email": True, "sms": True}),
    ):
        answer = (await client.data(SET_PREFS, sent, token=user.access))[
            "setNotificationPreferences"
        ]
        assert answer == {"preferences": expected, "userErrors": []}, sent
        assert await stored() == expected, sent
    other = await sign_up(client)  # one user's choice is theirs alone
    prefs = (await client.data(PREFS, token=other.access))["me"]["notificationPreferences"]
    assert prefs == {"email": True, "sms": False}


async def test_anonymous_callers_are_unauthenticated(server: Server, client: GraphQLHTTP) -> None:
    for query, variables in (
        (SET_PREFS, {"email": False}),
        (MARK, {"ids": None}),
        (MARK, {"ids": [global_id("Notification", uuid.uuid4())]}),
    ):
        body = await client.post(query, variables)
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body

    async with websockets.connect(
        server.ws_url, subprotocols=[Subprotocol("graphql-transport-ws")]
    ) as ws:
        await ws.send(json.dumps({"type": "connection_init"}))
        assert json.loads(await ws.recv())["type"] == "connection_ack"
        await ws.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUB}}),
        )
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
    assert message["id"] == "1" and message["type"] in ("error", "next"), message
    errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"


# ------------------------------------------------------------------- KYC decisions


async def test_a_kyc_rejection_notifies_the_user_with_the_reason(
    server: Server, client: GraphQLHTTP, admin_credentials: tuple[str, str]
) -> None:
    admin = await admin_token(client, admin_credentials)
    user = await sign_up(client)
    reason = "The passport photo is too blurred to read"
    async with live(server.ws_url, user.access, SUB) as queue:
        reviewed = (
            await client.data(
                REVIEW_KYC,
                {"i": {"userId": user.id, "approve": False, "reason": reason}},
                token=admin,
            )
        )["reviewKyc"]
        assert reviewed["userErrors"] == [] and reviewed["user"]["kycStatus"] == "REJECTED"
        pushed = (await next_event(queue, wait=WITHIN))["notificationReceived"]
    assert (pushed["kind"], pushed["title"]) == ("kyc.rejected", "Identity not verified")
    assert pushed["body"] == (
        f"We could not verify your identity: {reason}. You can send new documents from the app."
    )
    notes = await kinds_of(client, user, "kyc.rejected")
    assert [(n["id"], n["kind"]) for n in notes] == [(pushed["id"], "kyc.rejected")]
    assert reason in notes[0]["body"]
    assert await unread(client, user) == 1
