"""Worker death: the production shape (``serve`` without in-process jobs, two ``stacklo worker``
processes over the scenario's own PostgreSQL and Redis) while the workers are killed with
SIGKILL at seeded random moments and started again, under a steady stream of work for every
job they run: transfers (outbox events for the relay, notices and email for the notifier),
checkout payments (sales for settlement), installments falling due and due soon (collection
and reminders), rate ticks (the ticker).

Afterwards nothing may be lost or done twice: a subscriber that tracks cursors (and
resubscribes with its last one if its socket drops) got each of its events exactly once and in
order, as did its notification feed; each due installment was collected by exactly one ledger
transaction and reminded once; each sale was settled by exactly one settlement that moved
exactly its net amount; no outbox event is left unpublished; each notice was written once;
email is at least once (as documented), at most one message sent again per kill; and
``stacklo ledger verify`` passes.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import email
import json
import random
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.policy import default
from typing import Any

import asyncpg
import psutil
import pytest
import websockets
from aiosmtpd.controller import Controller
from websockets.exceptions import ConnectionClosed

from tests.api.test_checkout import create, pay, verified_merchant
from tests.conftest import free_port
from tests.faults.conftest import Proc, Stack
from tests.faults.report import record
from tests.helpers import (
    PASSWORD,
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    key,
    send,
    settled,
    sign_up,
    unique_email,
    verify_identity,
)

SEED = 20_261_207
PLANS = 24  # installment plans; their second installments fall due in waves
WAVES = 4
MERCHANTS = 2
KILL_PHASE_SECONDS = 24.0
MIN_KILLS = 6
DRAIN = 120.0  # seconds for the jobs to catch up once the faults stop (slow machines)
JOBS = ("relay", "scheduler", "notifier", "rate_feed")
SMTP_DELAY_SECONDS = 0.03  # a provider that takes its time: delivery batches last a while

SETTINGS = {
    "STACKLO_RUN_WORKER_IN_PROCESS": "false",
    "STACKLO_RELAY_POLL_SECONDS": "0.2",
    "STACKLO_RATE_TICK_SECONDS": "0.3",
    "STACKLO_SCHEDULER_INTERVAL_SECONDS": "0.2",
    "STACKLO_NOTIFIER_INTERVAL_SECONDS": "0.2",
    "STACKLO_SETTLEMENT_DELAY_SECONDS": "0",  # a sale settles at the scheduler's next round
    "STACKLO_SMTP_TLS": "none",
    "STACKLO_SMTP_SENDER": "Stacklo <no-reply@example.com>",
}

APPLY = """mutation($i: ApplyForCreditInput!) { applyForCredit(input: $i) {
  creditProfile { status availableCredit { amount } } userErrors { code message } } }"""
PAY_IN_4 = """mutation($i: PayCheckoutInput!) { payCheckout(input: $i) {
  installmentPlan { id } userErrors { code message } } }"""
TX_SUB = """subscription($after: String) { transactionUpdated(after: $after) {
  cursor transaction { id kind status } } }"""
NOTE_SUB = "subscription($after: ID) { notificationReceived(after: $after) { id kind } }"
RATE_SUB = """subscription { rateUpdated(pairs: [{base: USD, quote: NGN}]) {
  base quote mid updatedAt } }"""
LAST_NOTE = "{ me { notifications(first: 1) { edges { node { id } } } } }"


# ------------------------------------------------------------------------------ SMTP


class SlowMailbox:
    """An aiosmtpd handler that accepts every message after a pause and keeps it."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, EmailMessage]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(SMTP_DELAY_SECONDS)
        message = email.message_from_bytes(envelope.original_content, policy=default)
        assert isinstance(message, EmailMessage)
        self.messages.append((envelope.rcpt_tos[0], message))
        return "250 Message accepted for delivery"


@pytest.fixture
def mailbox() -> Iterator[tuple[SlowMailbox, int]]:
    box = SlowMailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield box, controller.port
    finally:
        controller.stop()


# ------------------------------------------------------------------------- subscriber


@dataclass
class Subscriber:
    """One subscription over graphql-transport-ws that remembers where it is: when its socket
    drops it subscribes again from its last cursor (``resume`` picks it from an event)."""

    url: str
    token: str
    query: str
    field: str
    after: str | None = None
    resume: str | None = "cursor"  # the event's field to resume from; None: live only
    received: list[dict[str, Any]] = field(default_factory=list)
    reconnects: int = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._session(stop)
            except (ConnectionClosed, OSError):
                self.reconnects += 1
                await asyncio.sleep(0.2)

    async def _session(self, stop: asyncio.Event) -> None:
        async with websockets.connect(self.url, subprotocols=["graphql-transport-ws"]) as ws:  # type: ignore[list-item]
            await ws.send(
                json.dumps(
                    {
                        "type": "connection_init",
                        "payload": {"authorization": f"Bearer {self.token}"},
                    }
                )
            )
            assert json.loads(await ws.recv())["type"] == "connection_ack"
            variables = {"after": self.after} if self.after is not None else {}
            await ws.send(
                json.dumps(
                    {
                        "id": "1",
                        "type": "subscribe",
                        "payload": {"query": self.query, "variables": variables},
                    }
                )
            )
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    message = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                    if message["type"] == "ping":
                        await ws.send(json.dumps({"type": "pong"}))
                    elif message["type"] == "next":
                        payload = message["payload"]
                        assert "errors" not in payload, payload
                        event = payload["data"][self.field]
                        self.received.append(event)
                        if self.resume is not None:
                            self.after = event[self.resume]
                    elif message["type"] in ("error", "complete"):
                        raise AssertionError(f"subscription ended: {message}")


@contextlib.asynccontextmanager
async def subscribed(subscriber: Subscriber) -> AsyncIterator[Subscriber]:
    stop = asyncio.Event()
    task = asyncio.create_task(subscriber.run(stop))
    await asyncio.sleep(0.5)  # subscribed to its channel
    try:
        yield subscriber
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def position(cursor: str) -> int:
    """A transaction event's cursor is ``p|<outbox position>``: opaque to clients, but the
    test compares it with the outbox."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    kind, value = raw.split("|")
    assert kind == "p", raw
    return int(value)


def raw_id(global_id: str) -> str:
    return base64.b64decode(global_id).decode().split(":", 1)[1]


# ------------------------------------------------------------------------------ kills


@dataclass
class Kill:
    at: float
    victims: list[str]
    jobs_led: list[str]
    open_work: list[str]  # jobs with a transaction open, or a relay batch positioned unpublished


def led_jobs(proc: Proc, since: int) -> set[str]:
    """The jobs this worker leads: each says so once it takes the lead, and with SIGKILL as
    the only fault it keeps it until it dies."""
    text = proc.log_text()[since:]
    return {job for job in JOBS if f"{job}_leading" in text}


def classify(query: str) -> str:
    q = query.lower()
    if "notification" in q or "outbox_readers" in q:
        return "notifier"
    if "rate" in q:
        return "rate_feed"
    if "installment" in q or "checkout" in q or "ledger" in q or "wallets" in q:
        return "scheduler"
    if "outbox_events" in q:
        return "relay"
    return "other"


async def open_transactions(db: asyncpg.Connection, pid: int, pg_port: int) -> list[str]:
    """What the process's database sessions are in the middle of, right now."""
    with contextlib.suppress(psutil.Error):
        ports = [
            c.laddr.port
            for c in psutil.Process(pid).net_connections(kind="tcp")
            if c.raddr and c.raddr.port == pg_port
        ]
        rows = await db.fetch(
            "SELECT query FROM pg_stat_activity WHERE client_port = ANY($1::int[]) "
            "AND state IN ('active', 'idle in transaction')",
            ports,
        )
        return [classify(r["query"]) for r in rows]
    return []


# ------------------------------------------------------------------------------ setup


async def borrower(client: GraphQLHTTP, db: asyncpg.Connection, admin: str) -> SignedUp:
    """A verified user with a year-old account, money coming in and approved credit."""
    user = await sign_up(client)
    await verify_identity(client, user, admin)
    for _ in range(3):
        await deposit(client, user, "400000")
    # The account's age is a fact of the credit decision; nothing in the API ages an
    # account, so SQL makes it a year old.
    await db.execute(
        "UPDATE users SET created_at = now() - interval '400 days' WHERE id = $1::uuid",
        raw_id(user.id),
    )
    applied = (
        await client.data(
            APPLY, {"i": {"monthlyIncome": "900000", "employmentStatus": "EMPLOYED"}}, user.access
        )
    )["applyForCredit"]
    assert applied["creditProfile"]["status"] == "APPROVED", applied
    available = Decimal(applied["creditProfile"]["availableCredit"]["amount"])
    assert available >= Decimal(3750) * PLANS, available
    return user


async def plan(client: GraphQLHTTP, owner: SignedUp, merchant_id: str, payer: SignedUp) -> str:
    checkout = (await create(client, owner, merchant_id, "5000"))["checkout"]["id"]
    paid = (
        await client.data(
            PAY_IN_4,
            {
                "i": {
                    "checkoutId": checkout,
                    "walletId": payer.user["wallets"][0]["id"],
                    "method": "INSTALLMENTS",
                    "product": "PAY_IN_4",
                    "idempotencyKey": key(),
                }
            },
            payer.access,
        )
    )["payCheckout"]
    assert paid["userErrors"] == [], paid
    return raw_id(paid["installmentPlan"]["id"])


async def quiet(db: asyncpg.Connection, query: str, within: float, *args: Any) -> None:
    """Until ``query`` counts nothing left to do."""
    deadline = time.monotonic() + within
    while (left := await db.fetchval(query, *args)) != 0:
        if time.monotonic() > deadline:
            rows = [  # what is stuck, when the outbox is
                dict(r)
                for r in await db.fetch(
                    "SELECT id, position, topic FROM outbox_events "
                    "WHERE published_at IS NULL AND topic <> 'rates' ORDER BY id LIMIT 20"
                )
            ]
            raise AssertionError(f"still {left} after {within} s: {query}; {rows}")
        await asyncio.sleep(0.1)


# ------------------------------------------------------------------------------- test


async def test_workers_killed_mid_batch_lose_nothing_and_do_nothing_twice(
    stack: Stack, mailbox: tuple[SlowMailbox, int]
) -> None:
    box, smtp_port = mailbox
    settings = {**SETTINGS, "STACKLO_SMTP_HOST": "127.0.0.1", "STACKLO_SMTP_PORT": str(smtp_port)}
    rng = random.Random(SEED)
    api = stack.serve("api", **settings)
    workers = [stack.worker("worker-a", **settings), stack.worker("worker-b", **settings)]
    since = {id(w): 0 for w in workers}  # log offset of each worker's current life
    admin_email = unique_email("admin")
    made = stack.cli("create-admin", "--email", admin_email, "--password", PASSWORD)
    assert made.returncode == 0, made.stderr
    db = await asyncpg.connect(stack.pg.dsn())
    client = GraphQLHTTP(api.base_url)
    try:
        admin = await admin_token(client, (admin_email, PASSWORD))
        shops = [await verified_merchant(client, admin) for _ in range(MERCHANTS)]
        bob = await borrower(client, db, admin)
        alice, carol = await sign_up(client), await sign_up(client)
        await deposit(client, alice, "100000")
        await deposit(client, carol, "500000")
        plans: list[str] = []
        for n in range(0, PLANS, 8):
            plans += await asyncio.gather(
                *(plan(client, *shops[(n + i) % MERCHANTS], bob) for i in range(min(8, PLANS - n)))
            )
        await settled(stack.pg.url(), within=30)
        first_note = await first_notification(client, bob)

        transfers: list[str] = []
        references: list[str] = []
        sales = 0

        async def transfers_to_bob(stop: asyncio.Event) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                sender = alice if n % 2 else carol
                amount = f"{1 + n / 100:.2f}"
                sent = await send(client, sender, {"email": bob.email}, amount)
                assert sent["userErrors"] == [], sent
                transfers.append(sent["transaction"]["id"])
                references.append(sent["transaction"]["reference"])
                await asyncio.sleep(rng.uniform(0.02, 0.15))

        async def sales_to_shops(stop: asyncio.Event) -> None:
            nonlocal sales
            while not stop.is_set():
                owner, merchant_id = shops[sales % MERCHANTS]
                checkout = (await create(client, owner, merchant_id, "150"))["checkout"]["id"]
                paid = await pay(client, carol, checkout)
                assert paid["userErrors"] == [], paid
                sales += 1
                await asyncio.sleep(rng.uniform(0.05, 0.3))

        async def installments_fall_due(stop: asyncio.Event) -> None:
            # Nothing in the API moves a due date: SQL brings each wave's second installment
            # to today (collected at once) and its third within the reminder window.
            today = datetime.now(UTC).date()
            for wave in range(WAVES):
                group = [uuid.UUID(p) for p in plans[wave::WAVES]]
                await db.execute(
                    "UPDATE installments SET due_date = $2 WHERE plan_id = ANY($1) AND sequence = 2",
                    group,
                    today,
                )
                await db.execute(
                    "UPDATE installments SET due_date = $2 WHERE plan_id = ANY($1) AND sequence = 3",
                    group,
                    today + timedelta(days=2),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), KILL_PHASE_SECONDS / (WAVES + 1))

        kills: list[Kill] = []

        async def killer(stop: asyncio.Event) -> None:
            restarts: list[asyncio.Task[None]] = []
            watch = await asyncpg.connect(stack.pg.dsn())

            async def restart(proc: Proc, after: float) -> None:
                await asyncio.sleep(after)
                since[id(proc)] = len(proc.log_text())
                proc.start()

            started = time.monotonic()
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), rng.uniform(0.4, 1.6))
                if stop.is_set():
                    break
                # Only workers that are up (a restart takes seconds on a busy machine).
                alive = [
                    w
                    for w in workers
                    if w.alive() and "worker_started" in w.log_text()[since[id(w)] :]
                ]
                if not alive:
                    continue
                if len(kills) % 4 == 3 and len(alive) == 2:
                    victims = alive  # both at once: nobody stands by
                else:
                    job = rng.choice(JOBS)
                    leaders = [w for w in alive if job in led_jobs(w, since[id(w)])]
                    victims = [leaders[0] if leaders else rng.choice(alive)]
                led: list[str] = []
                busy: list[str] = []
                for victim in victims:
                    assert victim.process is not None
                    led += sorted(led_jobs(victim, since[id(victim)]))
                    busy += await open_transactions(watch, victim.process.pid, stack.pg.port)
                for victim in victims:
                    victim.kill(signal.SIGKILL)
                if "relay" in led and await watch.fetchval(
                    "SELECT count(*) FROM outbox_events "
                    "WHERE position IS NOT NULL AND published_at IS NULL"
                ):
                    busy.append("relay")  # positions committed, not all published
                kills.append(
                    Kill(
                        round(time.monotonic() - started, 2),
                        [str(v.log.stem) for v in victims],
                        led,
                        sorted(set(busy)),
                    )
                )
                for victim in victims:
                    restarts.append(asyncio.create_task(restart(victim, rng.uniform(0.1, 1.2))))
            await asyncio.gather(*restarts)
            await watch.close()

        bob_tx = Subscriber(api.ws_url, bob.access, TX_SUB, "transactionUpdated", after="cHww")
        bob_notes = Subscriber(
            api.ws_url, bob.access, NOTE_SUB, "notificationReceived", after=first_note, resume="id"
        )
        rates = Subscriber(api.ws_url, bob.access, RATE_SUB, "rateUpdated", resume=None)
        async with subscribed(bob_tx), subscribed(bob_notes), subscribed(rates):
            stop = asyncio.Event()
            load = [
                asyncio.create_task(job(stop))
                for job in (transfers_to_bob, sales_to_shops, installments_fall_due, killer)
            ]
            await asyncio.sleep(KILL_PHASE_SECONDS)
            # Several kills whatever the machine: where a restart takes many seconds, the
            # faults go on (up to a bound) until enough have landed.
            for _ in range(int(KILL_PHASE_SECONDS * 10)):
                if len(kills) >= MIN_KILLS:
                    break
                await asyncio.sleep(0.25)
            stop.set()
            await asyncio.gather(*load)
            assert all(w.alive() for w in workers)

            # Drained: every job caught up with what it was given.
            await quiet(
                db,
                "SELECT count(*) FROM outbox_events WHERE published_at IS NULL AND topic <> 'rates'",
                DRAIN,
            )
            await quiet(
                db,
                "SELECT count(*) FROM installments WHERE plan_id = ANY($1::uuid[]) "
                "AND ((sequence = 2 AND status <> 'PAID') OR (sequence = 3 AND reminded_at IS NULL))",
                DRAIN,
                [uuid.UUID(p) for p in plans],
            )
            await quiet(
                db,
                "SELECT count(*) FROM checkouts WHERE paid_at IS NOT NULL AND settled_at IS NULL",
                DRAIN,
            )
            await quiet(
                db,
                "SELECT count(*) FROM outbox_events e, outbox_readers r WHERE r.name = 'notifier' "
                "AND e.topic IN ('transaction', 'notification') AND e.position > r.position",
                DRAIN,
            )
            await quiet(
                db, "SELECT count(*) FROM notification_deliveries WHERE status <> 'SENT'", DRAIN
            )
            await quiet(
                db,
                "SELECT count(*) FROM outbox_events WHERE published_at IS NULL AND topic <> 'rates'",
                DRAIN,
            )
            expected_tx = await db.fetch(
                "SELECT id, position, aggregate_id FROM outbox_events WHERE topic = 'transaction' "
                "AND audience @> ARRAY[$1::uuid] ORDER BY position",
                raw_id(bob.id),
            )
            expected_notes = [
                r["aggregate_id"]
                for r in await db.fetch(
                    "SELECT aggregate_id FROM outbox_events WHERE topic = 'notification_created' "
                    "AND audience @> ARRAY[$1::uuid] AND position > (SELECT position FROM "
                    "outbox_events WHERE topic = 'notification_created' AND aggregate_id = $2) "
                    "ORDER BY position",
                    raw_id(bob.id),
                    raw_id(first_note),
                )
            ]
            for _ in range(200):  # 20 s for the last events to arrive
                if len(bob_tx.received) >= len(expected_tx) and len(bob_notes.received) >= len(
                    expected_notes
                ):
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)  # anything published twice would arrive by now

        # --- the subscriber: every event of its user exactly once, in order
        got = [position(e["cursor"]) for e in bob_tx.received]
        want = [r["position"] for r in expected_tx]
        lost_tx = sorted(set(want) - set(got))
        duplicated_tx = sum(n - 1 for n in Counter(got).values())
        assert lost_tx == [] and duplicated_tx == 0, (lost_tx, duplicated_tx)
        assert got == want  # position order
        ids_by_position = {r["position"]: (r["aggregate_id"], r["id"]) for r in expected_tx}
        last_id: dict[str, int] = {}
        for p in got:  # and commit order for each transaction
            aggregate, event_id = ids_by_position[p]
            assert event_id > last_id.get(aggregate, -1), (aggregate, event_id)
            last_id[aggregate] = event_id
        got_notes = [raw_id(e["id"]) for e in bob_notes.received]
        lost_notes = sorted(set(expected_notes) - set(got_notes))
        duplicated_notes = sum(n - 1 for n in Counter(got_notes).values())
        assert lost_notes == [] and duplicated_notes == 0, (lost_notes, duplicated_notes)
        assert got_notes == expected_notes
        ticks = [(e["updatedAt"], e["mid"]) for e in rates.received]
        duplicated_ticks = sum(n - 1 for n in Counter(ticks).values())
        assert duplicated_ticks == 0, duplicated_ticks
        assert [t for t, _ in ticks] == sorted(t for t, _ in ticks)

        # --- collection: each due installment collected by exactly one ledger transaction
        collections = await db.fetch(
            "SELECT i.id, i.status, count(t.id) AS collected FROM installments i "
            "LEFT JOIN ledger_transactions t ON t.kind = 'INSTALLMENT_REPAYMENT' "
            "AND t.metadata -> 'installments' ? i.id::text "
            "WHERE i.plan_id = ANY($1::uuid[]) AND i.sequence = 2 GROUP BY i.id, i.status",
            [uuid.UUID(p) for p in plans],
        )
        assert len(collections) == PLANS
        collected_twice = sum(1 for r in collections if r["collected"] > 1)
        assert collected_twice == 0 and all(r["collected"] == 1 for r in collections), [
            dict(r) for r in collections if r["collected"] != 1
        ]
        assert all(r["status"] == "PAID" for r in collections)
        reminders = await db.fetch(
            "SELECT i.id, count(e.id) AS sent FROM installments i LEFT JOIN outbox_events e "
            "ON e.topic = 'notification' AND e.payload ->> 'installment_id' = i.id::text "
            "WHERE i.plan_id = ANY($1::uuid[]) AND i.sequence = 3 GROUP BY i.id",
            [uuid.UUID(p) for p in plans],
        )
        assert sorted(r["sent"] for r in reminders) == [1] * PLANS

        # --- settlement: each sale settled once, each settlement exactly its sales' net
        unsettled_settlements = await db.fetchval(
            "SELECT count(*) FROM ledger_transactions t WHERE t.kind = 'SETTLEMENT' "
            "AND NOT EXISTS (SELECT 1 FROM checkouts c WHERE c.settlement_transaction_id = t.id)"
        )
        mismatched = await db.fetch(
            "SELECT t.id, t.amount, sum(c.amount - c.fee) AS net, count(c.id) AS sales, "
            "(t.metadata ->> 'checkouts')::int AS said FROM ledger_transactions t "
            "JOIN checkouts c ON c.settlement_transaction_id = t.id WHERE t.kind = 'SETTLEMENT' "
            "GROUP BY t.id HAVING t.amount <> sum(c.amount - c.fee) "
            "OR count(c.id) <> (t.metadata ->> 'checkouts')::int"
        )
        paid_twice = int(unsettled_settlements) + len(mismatched)
        assert paid_twice == 0, (unsettled_settlements, [dict(r) for r in mismatched])
        per_merchant = await db.fetch(
            "SELECT m.id, (SELECT coalesce(sum(c.amount - c.fee), 0) FROM checkouts c "
            "WHERE c.merchant_id = m.id AND c.paid_at IS NOT NULL) AS owed, "
            "(SELECT coalesce(sum(t.amount), 0) FROM ledger_transactions t WHERE "
            "t.kind = 'SETTLEMENT' AND t.metadata ->> 'merchant_id' = m.id::text) AS paid "
            "FROM merchants m"
        )
        assert all(r["owed"] == r["paid"] for r in per_merchant), [dict(r) for r in per_merchant]
        settlements = await db.fetchval(
            "SELECT count(*) FROM ledger_transactions WHERE kind = 'SETTLEMENT'"
        )

        # --- notifications: one per (event, user, kind), every transfer's both parties
        notified_twice = await db.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM notifications GROUP BY event_id, user_id, kind "
            "HAVING count(*) > 1) AS d"
        )
        assert notified_twice == 0
        received = await db.fetchval(
            "SELECT count(*) FROM notifications n JOIN outbox_events e ON e.id = n.event_id "
            "WHERE n.kind = 'transfer.received' AND e.aggregate_id = ANY($1::text[])",
            [raw_id(t) for t in transfers],
        )
        assert received == len(transfers)
        collected_notes = await db.fetchval(
            "SELECT count(*) FROM notifications WHERE user_id = $1::uuid "
            "AND kind = 'installment.collected'",
            raw_id(bob.id),
        )
        assert collected_notes == PLANS
        # Email is at least once (README): a message the provider took just before its sender
        # died goes again, at most one per kill.
        sent = await db.fetchval(
            "SELECT count(*) FROM notification_deliveries WHERE channel = 'EMAIL' AND status = 'SENT'"
        )
        await asyncio.sleep(0.5)
        emailed_again = len(box.messages) - int(sent)
        assert 0 <= emailed_again <= len(kills), (emailed_again, len(kills))
        texts = [
            str(m.get_body(("plain",)).get_content()) for to, m in box.messages if to == bob.email
        ]  # type: ignore[union-attr]
        unmailed = [r for r in references if not any(r in t for t in texts)]
        assert unmailed == [], unmailed  # each transfer's email reached bob

        verified = stack.cli("ledger", "verify")
        assert verified.returncode == 0, verified.stdout + verified.stderr
        mid_batch = [k for k in kills if k.open_work]
        record(
            "worker_death",
            faults=len(kills),
            workers_killed=sum(len(k.victims) for k in kills),
            kills_mid_work=len(mid_batch),
            kills_mid_work_by_job=dict(Counter(j for k in kills for j in k.open_work)),
            kills_of_leaders_by_job=dict(Counter(j for k in kills for j in k.jobs_led)),
            transfers=len(transfers),
            sales=sales + PLANS,
            events_expected=len(want),
            events_received=len(got),
            notifications_expected=len(expected_notes),
            notifications_received=len(got_notes),
            rate_ticks_received=len(ticks),
            installments_due=PLANS,
            installments_collected=sum(r["collected"] for r in collections),
            reminders=sum(r["sent"] for r in reminders),
            settlements=int(settlements),
            emails_sent=int(sent),
            emails_received=len(box.messages),
            emailed_again=emailed_again,
            resubscribed=bob_tx.reconnects + bob_notes.reconnects + rates.reconnects,
            lost=len(lost_tx) + len(lost_notes),
            duplicated=duplicated_tx + duplicated_notes + duplicated_ticks,
            collected_twice=collected_twice,
            paid_twice=paid_twice,
            notified_twice=int(notified_twice),
            kills=[k.__dict__ for k in kills],
        )
    finally:
        await client.aclose()
        await db.close()


async def first_notification(client: GraphQLHTTP, user: SignedUp) -> str:
    """The id of the user's latest notification once the notifier has written one: the
    notification feed resumes after it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        edges = (await client.data(LAST_NOTE, token=user.access))["me"]["notifications"]["edges"]
        if edges:
            found: str = edges[0]["node"]["id"]
            return found
        await asyncio.sleep(0.2)
    raise AssertionError("no notification for the user within 30 s")


# A notifier process whose email provider takes each message (writing it down) and which dies
# by SIGKILL right after the provider took the third, unless told to survive.
SENDS_AND_DIES = """
import asyncio, os, signal, sys
from datetime import UTC, datetime

from stacklo.data.db import create_engine
from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.integrations.sms import LogSmsSender
from stacklo.realtime.notifier import Notifier


class Provider:
    taken = 0

    async def send(self, to, subject, text, html):
        with open(sys.argv[2], "a") as out:
            out.write(subject + "\\n")
        Provider.taken += 1
        if Provider.taken == 3 and sys.argv[3] == "dies":
            os.kill(os.getpid(), signal.SIGKILL)


async def main():
    engine = create_engine(sys.argv[1], pool_size=2)
    uow = SqlUnitOfWorkFactory(engine)
    notifier = Notifier(uow, lambda: datetime.now(UTC), Provider(), LogSmsSender())
    await notifier.run_once()
    await engine.dispose()


asyncio.run(main())
"""


async def test_a_notifier_killed_while_sending_sends_again_only_the_message_in_flight(
    own_pg: Any, tmp_path: Any
) -> None:
    """At least once, and no more than that: a notifier that dies right after its provider
    took a message sends that one again, not the ones taken before it."""
    from sqlalchemy import text

    from stacklo.data.db import create_engine
    from stacklo.data.uow import SqlUnitOfWorkFactory
    from stacklo.domain.transfers import Recipient, SendMoney
    from tests.integration.world import META, World

    engine = create_engine(own_pg.url())
    world = World(SqlUnitOfWorkFactory(engine))
    try:
        (alice, a), (bob, _) = await world.person(), await world.person()
        await world.deposit(alice, a, "100")
        for n in range(1, 6):
            await world.transfers.send(
                SendMoney(alice, a.id, Recipient(email=bob.email), Decimal(n), key(), META)
            )
        async with world.uow() as uow:  # what the relay does first: positions
            await uow.outbox.claim(500)
            await uow.commit()
        log = tmp_path / "taken.txt"
        for fate, code in (("dies", -signal.SIGKILL), ("survives", 0)):
            run = await asyncio.create_subprocess_exec(
                sys.executable, "-c", SENDS_AND_DIES, own_pg.url(), str(log), fate
            )
            assert await asyncio.wait_for(run.wait(), 120) == code
        taken = Counter(log.read_text().splitlines())
        async with engine.connect() as conn:
            sent = (
                await conn.execute(
                    text("SELECT count(*) FROM notification_deliveries WHERE status = 'SENT'")
                )
            ).scalar()
        assert sent == len(taken) == 11  # a deposit, five transfers to each party
        assert sum(taken.values()) - len(taken) == 1, taken  # the third, taken as it died
    finally:
        await engine.dispose()
