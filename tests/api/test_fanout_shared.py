"""Shared delivery: one execution of an event for every socket that reads it the same way.

Over real sockets: N subscribers with the same rateUpdated selection get the same bytes from
one execution per tick (the server's counters say how many ran), other selections and
variables get feeds of their own, the staff feed is shared by staff who read it alike, and
the viewer's own events never reach anyone else. In process: the frame text is strawberry's,
byte for byte, and a socket that cannot keep up is cut off without holding up the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import subprocess
import sys
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
import websockets
from graphql import ExecutionResult, GraphQLError
from websockets.asyncio.client import ClientConnection

from stacklo.web.delivery import Frames, Member, body, start
from tests.conftest import Server
from tests.helpers import (
    PASSWORD,
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    send,
    settled,
    sign_up,
    unique_email,
)

RATES = (
    "subscription Rates($pairs: [CurrencyPairInput!]) "
    "{ rateUpdated(pairs: $pairs) { base quote bid ask mid source updatedAt } }"
)
USD_NGN = {"pairs": [{"base": "USD", "quote": "NGN"}]}
GBP_USD = {"pairs": [{"base": "GBP", "quote": "USD"}]}
WALLETS = "subscription { walletUpdated { cursor wallet { id balance { amount } } } }"
TRANSACTIONS = "subscription { transactionUpdated { cursor transaction { reference status } } }"
QUIET = 1.0


class Socket:
    """A graphql-transport-ws connection; every ``next`` text it receives, by operation id."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.frames: dict[str, list[str]] = defaultdict(list)
        self.other: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws:
                text = raw if isinstance(raw, str) else raw.decode()
                message = json.loads(text)
                if message.get("type") == "next":
                    self.frames[message["id"]].append(text)
                elif message.get("type") != "pong":
                    self.other.append(text)

    async def subscribe(self, op: str, query: str, variables: dict[str, Any] | None = None) -> None:
        payload = {"query": query, "variables": variables or {}}
        await self.ws.send(json.dumps({"id": op, "type": "subscribe", "payload": payload}))

    async def wait(self, op: str, count: int, within: float = 10) -> list[str]:
        deadline = asyncio.get_running_loop().time() + within
        while len(self.frames[op]) < count:
            assert asyncio.get_running_loop().time() < deadline, (op, self.frames, self.other)
            await asyncio.sleep(0.02)
        return self.frames[op]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@contextlib.asynccontextmanager
async def sockets(server: Server, *users: SignedUp) -> AsyncIterator[list[Socket]]:
    opened: list[Socket] = []
    try:
        for user in users:
            ws = await websockets.connect(server.ws_url, subprotocols=["graphql-transport-ws"])
            init = {
                "type": "connection_init",
                "payload": {"authorization": f"Bearer {user.access}"},
            }
            await ws.send(json.dumps(init))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            opened.append(Socket(ws))
        yield opened
    finally:
        for socket in opened:
            await socket.close()


async def metric(client: GraphQLHTTP, name: str) -> float:
    """One sample of the server's /metrics (``name`` with its labels, as exported)."""
    text = (await client.http.get("/metrics")).text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


FEEDS = "stacklo_subscription_feeds"
SHARED = 'stacklo_subscription_executions_total{delivery="shared"}'
OWN = 'stacklo_subscription_executions_total{delivery="own"}'


def shared_part(frame: str) -> str:
    """The payload's data (and errors): what a feed serialises once for all its members."""
    start_at = frame.index('"payload":{"data":') + len('"payload":{"data":')
    end_at = frame.rindex(',"extensions":')
    return frame[start_at:end_at]


def updated_at(frame: str) -> str:
    return str(json.loads(frame)["payload"]["data"]["rateUpdated"]["updatedAt"])


async def feeds_settle(client: GraphQLHTTP, expected: float, within: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while await metric(client, FEEDS) != expected:
        assert asyncio.get_running_loop().time() < deadline, await metric(client, FEEDS)
        await asyncio.sleep(0.05)


async def test_one_execution_serves_every_socket_with_the_same_selection(
    server: Server, client: GraphQLHTTP
) -> None:
    users = [await sign_up(client) for _ in range(6)]
    feeds = await metric(client, FEEDS)
    async with sockets(server, *users) as opened:
        for socket in opened:
            await socket.subscribe("rates", RATES, USD_NGN)
        for socket in opened:
            await socket.wait("rates", 1)
        assert await metric(client, FEEDS) == feeds + 1  # six subscriptions, one feed
        executed = await metric(client, SHARED)
        marks = [len(socket.frames["rates"]) for socket in opened]
        for socket, mark in zip(opened, marks, strict=True):
            await socket.wait("rates", mark + 3)
        later = [s.frames["rates"][m:] for s, m in zip(opened, marks, strict=True)]
        # One execution per tick for all six sockets (one each would be at least 18).
        assert await metric(client, SHARED) - executed <= max(map(len, later)) + 1

        payloads: dict[str, set[str]] = defaultdict(set)
        for frames in later:
            ticks = [updated_at(frame) for frame in frames]
            assert len(ticks) == len(set(ticks)), "a tick delivered twice"
            for tick, frame in zip(ticks, frames, strict=True):
                payloads[tick].add(shared_part(frame))
        every = set.intersection(*({updated_at(f) for f in frames} for frames in later))
        assert len(every) >= 2
        for tick in every:
            assert len(payloads[tick]) == 1, payloads[tick]  # the same bytes on every socket
        frame = json.loads(later[0][-1])
        assert frame["payload"]["data"]["rateUpdated"]["base"] == "USD"
        assert frame["payload"]["extensions"]["cost"]["requestedQueryCost"] == 1
    await feeds_settle(client, feeds)  # the last member gone, the feed stopped


def rate(frame: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(frame)["payload"]["data"]["rateUpdated"]
    return found


async def test_other_selections_and_variables_get_their_own_execution(
    server: Server, client: GraphQLHTTP
) -> None:
    users = [await sign_up(client) for _ in range(4)]
    feeds = await metric(client, FEEDS)
    every_pair = "subscription { rateUpdated { base quote mid updatedAt } }"
    async with sockets(server, *users) as (a1, a2, b, c):
        await a1.subscribe("r", RATES, USD_NGN)
        await a2.subscribe("r", RATES, USD_NGN)
        await b.subscribe("r", RATES, GBP_USD)
        await c.subscribe("r", every_pair)
        for socket in (a1, a2, b, c):
            await socket.wait("r", 2)
        assert await metric(client, FEEDS) == feeds + 3
        assert {(rate(f)["base"], rate(f)["quote"]) for f in a1.frames["r"]} == {("USD", "NGN")}
        assert {(rate(f)["base"], rate(f)["quote"]) for f in b.frames["r"]} == {("GBP", "USD")}
        assert len({(rate(f)["base"], rate(f)["quote"]) for f in c.frames["r"]}) > 1
        ours = {updated_at(f): shared_part(f) for f in a1.frames["r"]}
        theirs = {updated_at(f): shared_part(f) for f in a2.frames["r"]}
        both = ours.keys() & theirs.keys()
        assert both and all(ours[tick] == theirs[tick] for tick in both)
    await feeds_settle(client, feeds)


async def test_the_viewers_own_events_never_reach_anyone_else(
    server: Server, client: GraphQLHTTP
) -> None:
    alice, bob, carol = await sign_up(client), await sign_up(client), await sign_up(client)
    await deposit(client, alice, "1000")
    await settled(server.database_url)
    async with sockets(server, alice, bob, carol) as opened:
        for socket in opened:
            await socket.subscribe("w", WALLETS)
            await socket.subscribe("t", TRANSACTIONS)
            await socket.subscribe("r", RATES, USD_NGN)  # the same shared feed for all three
        for socket in opened:
            await socket.wait("r", 1)
        own = await metric(client, OWN)
        reference = (await send(client, alice, {"email": bob.email}, "25.00"))["transaction"][
            "reference"
        ]
        mine, theirs, nobody = opened
        for socket in (mine, theirs):
            event = json.loads((await socket.wait("t", 1))[0])["payload"]["data"]
            assert event["transactionUpdated"]["transaction"]["reference"] == reference
        wallet = json.loads((await mine.wait("w", 1))[0])["payload"]["data"]["walletUpdated"]
        assert wallet["wallet"]["id"] == alice.user["wallets"][0]["id"]
        assert wallet["wallet"]["balance"] == {"amount": "975.00"}
        wallet = json.loads((await theirs.wait("w", 1))[0])["payload"]["data"]["walletUpdated"]
        assert wallet["wallet"]["id"] == bob.user["wallets"][0]["id"]
        assert wallet["wallet"]["balance"] == {"amount": "25.00"}
        await asyncio.sleep(QUIET)
        assert nobody.frames["w"] == nobody.frames["t"] == []
        assert len(mine.frames["t"]) == len(theirs.frames["t"]) == 1
        assert len(mine.frames["w"]) == len(theirs.frames["w"]) == 1
        # Executed for each of them: two parties, two subscriptions each.
        assert await metric(client, OWN) - own == 4
        assert len(nobody.frames["r"]) >= 1  # carol's socket is alive: only ticks reach her


def create_admin(server: Server) -> tuple[str, str]:
    email = unique_email("staff")
    done = subprocess.run(
        [sys.executable, "-m", "stacklo", "create-admin", "--email", email, "--password", PASSWORD],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return email, PASSWORD


async def test_staff_who_read_the_platform_feed_alike_share_it(
    server: Server, client: GraphQLHTTP, admin_credentials: tuple[str, str]
) -> None:
    first = await admin_token(client, admin_credentials)
    second = await admin_token(client, create_admin(server))
    staff = [
        SignedUp(id="", email="", access=token, refresh="", user={}) for token in (first, second)
    ]
    sender, receiver = await sign_up(client), await sign_up(client)
    await deposit(client, sender, "100")
    await settled(server.database_url)
    feeds = await metric(client, FEEDS)
    plain = "subscription { platformActivity { reference status amount { amount } } }"
    relative = "subscription { platformActivity { reference counterparty { displayName } } }"
    async with sockets(server, *staff) as (one, two):
        for socket in (one, two):
            await socket.subscribe("plain", plain)
            await socket.subscribe("relative", relative)
        await asyncio.sleep(0.5)
        # One feed for both admins; the counterparty is seen from each viewer's side: one each.
        await feeds_settle(client, feeds + 3)
        reference = (await send(client, sender, {"email": receiver.email}, "7"))["transaction"][
            "reference"
        ]
        for op in ("plain", "relative"):
            for socket in (one, two):
                for _ in range(50):
                    if any(reference in f for f in socket.frames[op]):
                        break
                    await asyncio.sleep(0.1)
        mine = [shared_part(f) for f in one.frames["plain"] if reference in f]
        yours = [shared_part(f) for f in two.frames["plain"] if reference in f]
        assert mine == yours and len(mine) == 1
        assert all(reference in f for f in one.frames["relative"][-1:])
    await feeds_settle(client, feeds)


# ------------------------------------------------------------------------ in process ----


def test_frames_are_the_text_strawberry_sends() -> None:
    """The same JSON strawberry's send_next writes (encode_json: compact separators)."""
    extensions = {"cost": {"requestedQueryCost": 1, "actualQueryCost": 1}}
    error = GraphQLError("nope", path=["rateUpdated", "mid"], extensions={"code": "X"})
    for result in (
        ExecutionResult({"rateUpdated": {"mid": "1549.07", "base": "USD"}}),
        ExecutionResult({"rateUpdated": None}, [error]),
    ):
        for op, ext in (('id "with" quotes ü', extensions), ("7", {})):
            payload: dict[str, Any] = {"data": result.data}
            if result.errors:
                payload["errors"] = [e.formatted for e in result.errors]
            if ext:
                payload["extensions"] = ext
            expected = json.dumps(
                {"id": op, "type": "next", "payload": payload}, separators=(",", ":")
            )
            assert Frames(op, ext).next(body(result)) == expected
        assert Frames("7", {}).complete() == '{"id":"7","type":"complete"}'


class _Held:
    def __init__(self) -> None:
        self.exited = 0

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        self.exited += 1


async def test_a_socket_that_cannot_keep_up_is_cut_off_alone() -> None:
    open_ = asyncio.Event()
    written: list[str] = []
    closed: list[tuple[int, str]] = []
    forgotten: list[bool] = []

    async def slow_send(text: str) -> None:
        await open_.wait()
        written.append(text)

    async def close(code: int, reason: str) -> None:
        closed.append((code, reason))

    held = _Held()
    member = Member(slow_send, close, Frames("r", {}), held, 3, lambda: forgotten.append(True))
    for n in range(4):  # one waiting to be written, three waiting behind it: the bound
        member.next(str(n))
    await asyncio.sleep(0)
    assert closed == [] and written == []
    open_.set()
    await asyncio.sleep(0.01)
    assert [json.loads(t)["payload"]["data"] for t in written] == [0, 1, 2, 3]  # in order
    open_.clear()
    for n in range(5):  # past the bound: closed as a slow consumer, nothing grows
        member.next(str(n))
    await asyncio.sleep(0.01)
    assert closed == [(4413, "subscriber too slow: buffer overflow")]
    await member.leave()
    await member.leave()
    assert held.exited == 1 and forgotten == []


async def test_a_send_that_does_not_wait_finishes_at_once() -> None:
    written: list[str] = []

    async def quick(text: str) -> None:
        written.append(text)

    assert start(quick("a")) is None and written == ["a"]
    gate = asyncio.Event()

    async def waits() -> None:
        await gate.wait()
        written.append("b")

    task = start(waits())
    assert task is not None and not task.done()
    gate.set()
    await task
    assert written == ["a", "b"]


@pytest.mark.parametrize("cancel", [True, False])
async def test_a_send_finished_later_can_be_cancelled(cancel: bool) -> None:
    cleaned: list[bool] = []
    gate = asyncio.Event()

    async def waits() -> None:
        try:
            await gate.wait()
        finally:
            cleaned.append(True)

    task = start(waits())
    assert task is not None
    await asyncio.sleep(0)
    if cancel:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    else:
        gate.set()
        await task
    assert cleaned == [True]
