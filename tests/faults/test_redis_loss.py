"""Redis lost during fan-out: killed (SIGKILL) for a few seconds, then started on its port again.

Two ``serve`` instances and a ``worker`` share the scenario's own PostgreSQL and Redis.
Transfers go through instance A before, during and after the outage; subscribers listen on
instance B with cursors. What must hold:

- HTTP keeps answering (no 500, no error), transfers included; the throttles count in each
  process's memory while Redis is away (the documented policy), so a limit holds per process;
- a subscription whose events can no longer flow is closed with 1012, a subscribe while
  Redis is away is refused with ``SERVICE_UNAVAILABLE``; resubscribing with the last cursor
  gets every event, in order, none twice (checked against the outbox itself);
- once Redis is back, live delivery works again with no process restarted: new subscribers
  hear transfers, rate ticks and ended sessions (the session guard follows its channel again).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from hashlib import sha256
from typing import Any

import asyncpg
import httpx
import websockets
from websockets.exceptions import ConnectionClosed

from stacklo.realtime.streams import BROADCAST_LOST_CLOSE
from stacklo.schema.common import decode_cursor, encode_cursor
from tests.faults.conftest import Proc, Stack
from tests.faults.report import record
from tests.helpers import GraphQLHTTP, SignedUp, deposit, key, settled, sign_up

TX_SUB = (
    "subscription($after: String) { transactionUpdated(after: $after) "
    "{ cursor transaction { id reference status } } }"
)
WALLET_SUB = (
    "subscription($after: String) { walletUpdated(after: $after) "
    "{ cursor wallet { id balance { amount } } } }"
)
RATE_SUB = "subscription { rateUpdated { base quote mid } }"
SEND = """mutation($i: SendMoneyInput!) { sendMoney(input: $i) {
  transaction { id reference status } userErrors { code message field } } }"""
LOG_IN = """mutation($i: LogInInput!) { logIn(input: $i) {
  session { accessToken } userErrors { code } } }"""
LOG_OUT = "mutation($i: LogOutInput!) { logOut(input: $i) { userErrors { code } } }"
RATES = "{ rates { base quote mid } }"
TRANSPORT = "graphql-transport-ws"
START = encode_cursor("p", 0)  # before every event: the whole stream, replayed then live
ATTEMPTS = 5  # sign-in attempts per address and minute on these servers
OUTAGE = 2.5  # seconds Redis stays dead


@dataclass
class Resuming:
    """One subscription on a socket of its own that, whenever it ends, subscribes again with
    the last cursor it received (as a client following the README does)."""

    ws_url: str
    token: str
    query: str
    field: str
    cursor: str | None = START
    events: list[dict[str, Any]] = field(default_factory=list)
    closes: list[int] = field(default_factory=list)
    refusals: list[str] = field(default_factory=list)
    subscribes: int = 0
    arrivals: list[float] = field(default_factory=list)

    async def run(self) -> None:
        while True:
            try:
                await self._once()
            except ConnectionClosed as closed:
                self.closes.append(closed.rcvd.code if closed.rcvd else 1006)
            await asyncio.sleep(0.1)

    async def _once(self) -> None:
        async with websockets.connect(self.ws_url, subprotocols=[TRANSPORT]) as ws:
            init = {"type": "connection_init", "payload": {"authorization": f"Bearer {self.token}"}}
            await ws.send(json.dumps(init))
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            self.subscribes += 1
            variables = {"after": self.cursor} if self.cursor is not None else {}
            payload = {"query": self.query, "variables": variables}
            await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            while True:
                message = json.loads(await ws.recv())
                if message["type"] in ("ping", "pong", "ka"):
                    continue
                if message["type"] == "complete":
                    return  # after a refusal: subscribe again
                if message["type"] == "error":
                    self.refusals.extend(e["extensions"]["code"] for e in message["payload"])
                    return
                assert message["type"] == "next", message
                body = message["payload"]
                if body.get("errors"):
                    self.refusals.extend(e["extensions"]["code"] for e in body["errors"])
                    continue
                item = body["data"][self.field]
                self.events.append(item)
                self.arrivals.append(time.monotonic())
                if isinstance(item, dict) and "cursor" in item:
                    self.cursor = item["cursor"]

    def positions(self) -> list[int]:
        return [int(decode_cursor(e["cursor"], 2)[1]) for e in self.events]  # type: ignore[index]


async def stream_positions(dsn: str, user_id: str, topic: str) -> list[int]:
    """Every positioned outbox event of ``topic`` for the user: what a stream from the start
    must have delivered, in this order."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            """SELECT position FROM outbox_events
               WHERE topic = $1 AND audience @> ARRAY[$2::uuid] AND position IS NOT NULL
               ORDER BY position""",
            topic,
            user_id,
        )
    finally:
        await conn.close()
    return [r["position"] for r in rows]


def raw_id(global_id: str) -> str:
    from stacklo.schema.common import decode_global_id

    decoded = decode_global_id(global_id, "User")
    assert decoded is not None
    return decoded[1]


async def transfer(client: GraphQLHTTP, sender: SignedUp, to: SignedUp, tally: Counter[str]) -> str:
    """One transfer over HTTP; any answer but a completed transfer fails the test."""
    payload = {
        "fromWalletId": sender.user["wallets"][0]["id"],
        "to": {"email": to.email},
        "amount": "1.00",
        "idempotencyKey": key(),
    }
    response = await client.http.post(
        "/graphql",
        json={"query": SEND, "variables": {"i": payload}},
        headers={"authorization": f"Bearer {sender.access}"},
    )
    tally[str(response.status_code)] += 1
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body and body["data"]["sendMoney"]["userErrors"] == [], body
    reference: str = body["data"]["sendMoney"]["transaction"]["reference"]
    return reference


async def sign_in_attempt(base_url: str, address: str) -> httpx.Response:
    """A wrong password from ``address`` (through the trusted proxy): counts against it."""
    client = GraphQLHTTP(base_url, client_address=address)
    try:
        return await client.http.post(
            "/graphql",
            json={
                "query": LOG_IN,
                "variables": {"i": {"email": "nobody@example.com", "password": "wrong" * 3}},
            },
        )
    finally:
        await client.aclose()


async def persisted_query_round(base_url: str) -> int:
    """Apollo's automatic persisted queries: the hash alone (not found), then with the text,
    then the hash alone again (found): three answers, none an error but the first's."""
    text = "{ rates { base quote } }"
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": sha256(text.encode()).hexdigest()}}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        first = await http.post("/graphql", json={"extensions": persisted})
        assert first.status_code == 200, first.text
        assert first.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        for body in ({"query": text, "extensions": persisted}, {"extensions": persisted}):
            answer = await http.post("/graphql", json=body)
            assert answer.status_code == 200 and "errors" not in answer.json(), answer.text
    return 3


async def metric(base_url: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        text = (await http.get("/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


async def until(check: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.05)


def start_stack(stack: Stack) -> tuple[Proc, Proc]:
    settings = {
        "STACKLO_RUN_WORKER_IN_PROCESS": "false",
        "STACKLO_AUTH_ATTEMPTS_PER_ADDRESS": f"{ATTEMPTS}/minute",
    }
    a = stack.serve("a", **settings)
    b = stack.serve("b", **settings)
    stack.worker("worker", **settings).wait_for_log("relay_leading", timeout=90)
    return a, b


async def test_subscribers_resume_every_event_across_a_redis_restart(stack: Stack) -> None:
    a, b = start_stack(stack)
    client = GraphQLHTTP(a.base_url, client_address="10.1.0.1")
    tally: Counter[str] = Counter()
    tasks: list[asyncio.Task[None]] = []
    try:
        alice = await sign_up(client)
        other = GraphQLHTTP(a.base_url, client_address="10.1.0.2")
        bob = await sign_up(other)
        await other.aclose()
        await deposit(client, alice, "1000")
        await settled(stack.pg.url())

        subscribers = [
            Resuming(b.ws_url, bob.access, TX_SUB, "transactionUpdated"),
            Resuming(b.ws_url, bob.access, WALLET_SUB, "walletUpdated"),
            Resuming(b.ws_url, alice.access, TX_SUB, "transactionUpdated"),
            Resuming(b.ws_url, alice.access, WALLET_SUB, "walletUpdated"),
        ]
        ticks = Resuming(b.ws_url, bob.access, RATE_SUB, "rateUpdated", cursor=None)
        tasks = [asyncio.create_task(s.run()) for s in [*subscribers, ticks]]

        references = [await transfer(client, alice, bob, tally) for _ in range(5)]
        await settled(stack.pg.url())
        dsn = stack.pg.dsn()
        streams = list(
            zip(
                subscribers,
                [bob, bob, alice, alice],
                ["transaction", "wallet", "transaction", "wallet"],
                strict=True,
            )
        )
        for subscriber, user, topic in streams:  # all delivered before the outage
            want = len(await stream_positions(dsn, raw_id(user.id), topic))
            await until(lambda s=subscriber, n=want: _has(s, n), 15, "events before the outage")
        await until(lambda: _has(ticks, 1), 15, "a rate tick")

        # Redis dies.
        killed_at = time.monotonic()
        stack.redis.stop()  # type: ignore[union-attr]
        for subscriber in [*subscribers, ticks]:
            await until(lambda s=subscriber: _closed(s), 10, "the subscriber closed")
        # Subscribing again while Redis is away is refused, retryably.
        await until(lambda: _refused(subscribers[0]), 10, "a refused resubscription")

        # Transfers and reads keep working: the rate cache and persisted queries fall back
        # to each process's memory.
        for _ in range(3):
            references.append(await transfer(client, alice, bob, tally))
        for server in (a, b):
            rates = await GraphQLHTTP(server.base_url).post(RATES, token=bob.access)
            assert "errors" not in rates and rates["data"]["rates"], rates
            tally["200"] += 1
            tally["200"] += await persisted_query_round(server.base_url)

        # Throttles: each process counts in its own memory (the limit holds per process).
        for server in (a, b):
            answers = [
                await sign_in_attempt(server.base_url, "10.9.9.9") for _ in range(ATTEMPTS + 1)
            ]
            assert [r.status_code for r in answers] == [200] * ATTEMPTS + [429], [
                r.text for r in answers
            ]
            refusal = answers[-1].json()["errors"][0]["extensions"]
            assert refusal["code"] == "RATE_LIMITED" and answers[-1].headers["retry-after"]
            tally["throttle"] += len(answers)
        while time.monotonic() - killed_at < OUTAGE:
            references.append(await transfer(client, alice, bob, tally))
        outage_transfers = len(references) - 5

        # Redis is back on the same port.
        stack.redis.start()  # type: ignore[union-attr]
        back_at = time.monotonic()
        references.extend([await transfer(client, alice, bob, tally) for _ in range(5)])
        await settled(stack.pg.url(), within=30)

        # Everyone catches up from their cursor: every event, in order, none twice.
        for subscriber, user, topic in streams:
            expected = await stream_positions(dsn, raw_id(user.id), topic)

            async def caught_up(s: Resuming = subscriber, want: int = len(expected)) -> bool:
                return len(s.events) >= want

            await until(caught_up, 30, f"{topic} events")
            assert subscriber.positions() == expected
        received = [e["transaction"]["reference"] for e in subscribers[0].events]
        assert [r for r in received if r in set(references)] == references

        # How soon after Redis was back each subscriber had its first event again (replayed).
        resumed = max(min(t for t in s.arrivals if t > back_at) for s in subscribers) - back_at
        reconnected = [
            json.loads(line)["down_seconds"]
            for line in b.log_text().splitlines()
            if '"broadcast_connected"' in line
        ]

        # Live again with no restart: a new transfer, a rate tick and an ended session.
        before = len(subscribers[0].events)
        fresh = await transfer(client, alice, bob, tally)
        await until(lambda: _has(subscribers[0], before + 1), 10, "a live transfer event")
        assert subscribers[0].events[-1]["transaction"]["reference"] == fresh
        seen = len(ticks.events)
        await until(lambda: _has(ticks, seen + 1), 10, "a live rate tick")
        closed_by_event = await metric(
            b.base_url, 'stacklo_session_sockets_closed_total{via="event"}'
        )
        session = await open_signed_in(b.ws_url, client, alice)
        out = await client.data(LOG_OUT, {"i": {"refreshToken": session[1]}})
        assert out["logOut"]["userErrors"] == []
        assert await close_code(session[0]) == 4403

        async def by_event() -> bool:
            now = await metric(b.base_url, 'stacklo_session_sockets_closed_total{via="event"}')
            return now > closed_by_event

        await until(by_event, 10, "the session event")

        assert a.alive() and b.alive() and all(p.alive() for p in stack.procs)
        assert set(tally) <= {"200", "throttle"}, tally
        record(
            "redis_loss",
            faults=1,
            outage_seconds=round(back_at - killed_at, 2),
            requests=sum(tally.values()),
            transfers=len(references) + 1,
            transfers_during_outage=outage_transfers,
            http_5xx=0,
            subscriptions=len(subscribers) + 1,
            closed_1012=sum(s.closes.count(BROADCAST_LOST_CLOSE) for s in [*subscribers, ticks]),
            refused_service_unavailable=sum(
                s.refusals.count("SERVICE_UNAVAILABLE") for s in [*subscribers, ticks]
            ),
            resubscribes=sum(s.subscribes for s in [*subscribers, ticks]),
            events_expected=sum(len(s.positions()) for s in subscribers),
            events_received=sum(len(s.events) for s in subscribers),
            lost=0,
            duplicated=0,
            out_of_order=0,
            broadcast_down_seconds=reconnected[-1],
            resumed_seconds_after_redis_back=round(resumed, 2),
        )
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()


async def _has(subscriber: Resuming, count: int) -> bool:
    return len(subscriber.events) >= count


async def _live(proc: Proc, streams: float) -> bool:
    return await metric(proc.base_url, "stacklo_streams_live") >= streams


async def _closed(subscriber: Resuming) -> bool:
    return BROADCAST_LOST_CLOSE in subscriber.closes


async def _refused(subscriber: Resuming) -> bool:
    return "SERVICE_UNAVAILABLE" in subscriber.refusals


async def open_signed_in(
    ws_url: str, client: GraphQLHTTP, user: SignedUp
) -> tuple[websockets.ClientConnection, str]:
    """A socket on a session of its own, and that session's refresh token."""
    answer = await client.data(
        "mutation($i: LogInInput!) { logIn(input: $i) { session { accessToken refreshToken } } }",
        {"i": {"email": user.email, "password": "correct horse battery"}},
    )
    session = answer["logIn"]["session"]
    ws = await websockets.connect(ws_url, subprotocols=[TRANSPORT])
    init = {
        "type": "connection_init",
        "payload": {"authorization": f"Bearer {session['accessToken']}"},
    }
    await ws.send(json.dumps(init))
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    return ws, session["refreshToken"]


async def close_code(ws: websockets.ClientConnection, within: float = 10) -> int | None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            try:
                while True:
                    await ws.recv()
            except ConnectionClosed as closed:
                return closed.rcvd.code if closed.rcvd else None
    return None


async def answer(ws: websockets.ClientConnection, within: float) -> dict[str, Any]:
    """The next message that is not a keep-alive."""
    async with asyncio.timeout(within):
        while (message := json.loads(await ws.recv()))["type"] == "ka":
            pass
    return message  # type: ignore[no-any-return]


LEGACY_RATES = "subscription { rateUpdated { base quote mid } }"
LEGACY_NOTIFICATIONS = "subscription { notificationReceived { id } }"


async def legacy_subscriber(ws_url: str, token: str, query: str) -> websockets.ClientConnection:
    """A ``graphql-ws`` (legacy protocol) socket with one subscription started."""
    ws = await websockets.connect(ws_url, subprotocols=["graphql-ws"])
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}})
    )
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"type": "start", "id": "1", "payload": {"query": query}}))
    return ws


async def test_a_subscriber_is_never_left_silent_by_a_redis_restart(stack: Stack) -> None:
    """broadcaster 0.3.1 alone: once its Redis connection dropped, its listener was dead and a
    subscriber heard nothing ever again, though Redis was back and the socket open."""
    solo = stack.serve("solo")
    client = GraphQLHTTP(solo.base_url, client_address="10.2.0.1")
    try:
        alice = await sign_up(client)
        bob = await sign_up(client)
        await deposit(client, alice, "100")
        await settled(stack.pg.url())
        listener = Resuming(solo.ws_url, bob.access, TX_SUB, "transactionUpdated")
        task = asyncio.create_task(listener.run())
        try:
            await transfer(client, alice, bob, Counter())
            await until(lambda: _has(listener, 1), 15, "the first event")
            # The legacy protocol's rate and notification feeds are closed the same way.
            live = await metric(solo.base_url, "stacklo_streams_live")
            legacy = [
                await legacy_subscriber(solo.ws_url, bob.access, query)
                for query in (LEGACY_RATES, LEGACY_NOTIFICATIONS)
            ]
            # Only a subscription already listening can be lost; one still starting is refused.
            await until(lambda: _live(solo, live + 2), 15, "the legacy feeds listening")
            stack.redis.stop()  # type: ignore[union-attr]
            codes = await asyncio.gather(*(close_code(ws, 20) for ws in legacy))
            assert codes == [BROADCAST_LOST_CLOSE, BROADCAST_LOST_CLOSE], codes
            late = await legacy_subscriber(solo.ws_url, bob.access, LEGACY_NOTIFICATIONS)
            refusal = await answer(late, 20)
            codes_seen = [e["extensions"]["code"] for e in refusal["payload"]["errors"]]
            assert codes_seen == ["SERVICE_UNAVAILABLE"], refusal
            assert (await answer(late, 10))["type"] == "complete"
            await late.close()
            stack.redis.start()  # type: ignore[union-attr]
            reference = await transfer(client, alice, bob, Counter())
            await until(lambda: _has(listener, 2), 20, "the event after Redis came back")
            assert listener.events[-1]["transaction"]["reference"] == reference
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    finally:
        await client.aclose()
