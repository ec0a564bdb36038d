"""The notifier on real PostgreSQL and a real SMTP server: events become exactly one
notification each (also when a batch dies half-way), and email goes out, retried after a
temporary refusal."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from collections.abc import Iterator, Mapping
from decimal import Decimal

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import text

from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.domain.transfers import Recipient, SendMoney
from stacklo.integrations.email import SmtpSender
from stacklo.integrations.sms import LogSmsSender
from stacklo.integrations.templates import Message, render
from stacklo.realtime.notifier import Notifier
from tests.integration.test_email import Recorder, free_port
from tests.integration.world import META, World


@pytest.fixture
def world(uow_factory: SqlUnitOfWorkFactory) -> World:
    return World(uow_factory)


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield recorder, controller.port
    finally:
        controller.stop()


def notifier(world: World, port: int, **more: object) -> Notifier:
    email = SmtpSender("127.0.0.1", port, sender="Stacklo <no-reply@example.com>", timeout=2)
    return Notifier(world.uow, world.clock, email, LogSmsSender(), **more)  # type: ignore[arg-type]


async def notifications(world: World) -> list[tuple[str, str]]:
    async with world.uow.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT u.email, n.kind FROM notifications n JOIN users u ON u.id = n.user_id")
        )
        return sorted((r[0], r[1]) for r in rows)


async def outbox_notifications(world: World) -> int:
    async with world.uow.engine.connect() as conn:
        found = await conn.execute(
            text("SELECT count(*) FROM outbox_events WHERE topic = 'notification_created'")
        )
        return int(found.scalar() or 0)


async def position_events(world: World) -> None:
    """What the relay does first: give committed events their positions."""
    async with world.uow() as uow:
        while await uow.outbox.claim(500):
            pass
        await uow.commit()


async def test_a_transfer_notifies_each_party_once_even_after_a_failed_batch(
    world: World, smtp: tuple[Recorder, int]
) -> None:
    (alice, a), (bob, _) = await world.person(), await world.person()
    await world.deposit(alice, a, "100")
    await world.transfers.send(
        SendMoney(alice, a.id, Recipient(email=bob.email), Decimal(30), "t1", META)
    )
    await position_events(world)

    calls = 0

    def dies_half_way(kind: str, data: Mapping[str, str]) -> Message:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("killed mid-batch")
        return render(kind, data)

    with pytest.raises(RuntimeError):
        await notifier(world, smtp[1], renderer=dies_half_way).step()
    assert await notifications(world) == []  # the batch left nothing behind

    again = notifier(world, smtp[1])
    await again.run_once()
    await again.run_once()  # and a second pass changes nothing
    assert await notifications(world) == sorted(
        [
            (alice.email, "deposit.credited"),
            (alice.email, "transfer.sent"),
            (bob.email, "transfer.received"),
        ]
    )
    assert await outbox_notifications(world) == 3  # one live push each
    recorder, _ = smtp
    subjects = sorted((to[0], msg["Subject"]) for _, to, msg in recorder.messages)
    assert [to for to, _ in subjects].count(bob.email) == 1
    assert len(recorder.messages) == 3


async def test_email_is_retried_after_a_temporary_refusal(
    world: World, smtp: tuple[Recorder, int]
) -> None:
    alice, a = await world.person()
    recorder, port = smtp
    recorder.data.append("451 4.3.0 Try again later")
    await world.deposit(alice, a, "50")
    await position_events(world)
    sender = notifier(world, port)
    await sender.run_once()
    assert recorder.messages == []
    async with world.uow.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, attempts, last_error FROM notification_deliveries")
            )
        ).one()
    assert (row[0], row[1]) == ("PENDING", 1) and "451" in row[2]
    await sender.run_once()  # not due yet: nothing sent
    assert recorder.messages == []
    world.clock.advance(31)
    await sender.run_once()
    assert len(recorder.messages) == 1
    _, to, message = recorder.messages[0]
    assert to == [alice.email] and message.get_body(("plain",)) is not None


async def test_a_permanent_refusal_gives_up_and_says_why(
    world: World, smtp: tuple[Recorder, int]
) -> None:
    alice, a = await world.person()
    recorder, port = smtp
    recorder.data.append("550 5.1.1 No such mailbox")
    await world.deposit(alice, a, "50")
    await position_events(world)
    await notifier(world, port).run_once()
    async with world.uow.engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT status, attempts, last_error FROM notification_deliveries")
            )
        ).one()
    assert (row[0], row[1]) == ("FAILED", 1) and "550" in row[2]


async def test_preferences_choose_the_channels(world: World, smtp: tuple[Recorder, int]) -> None:
    alice, a = await world.person()
    async with world.uow() as uow:
        await uow.notifications.set_preferences(alice.id, email=False, sms=False)
        await uow.commit()
    await world.deposit(alice, a, "50")
    await position_events(world)
    await notifier(world, smtp[1]).run_once()
    assert await notifications(world) == [(alice.email, "deposit.credited")]
    assert smtp[0].messages == []  # in-app only


# A notifier process that dies (SIGKILL, no clean-up of any kind) as it renders its third
# notice: two notifications of the batch are written in its open transaction by then.
KILLED_MID_BATCH = """
import asyncio, os, signal, sys
from datetime import UTC, datetime

from stacklo.data.db import create_engine
from stacklo.data.uow import SqlUnitOfWorkFactory
from stacklo.integrations.email import LogEmailSender
from stacklo.integrations.sms import LogSmsSender
from stacklo.integrations.templates import render
from stacklo.realtime.notifier import Notifier

calls = 0

def dies(kind, data):
    global calls
    calls += 1
    if calls == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return render(kind, data)

async def main():
    engine = create_engine(sys.argv[1], pool_size=1)
    uow = SqlUnitOfWorkFactory(engine)
    notifier = Notifier(uow, lambda: datetime.now(UTC), LogEmailSender(), LogSmsSender(),
                        renderer=dies)
    await notifier.step()

asyncio.run(main())
"""


async def test_a_notifier_process_killed_mid_batch_leaves_nothing_and_the_next_notifies_once(
    world: World, smtp: tuple[Recorder, int], integration_url: str
) -> None:
    (alice, a), (bob, _) = await world.person(), await world.person()
    await world.deposit(alice, a, "100")
    await world.transfers.send(
        SendMoney(alice, a.id, Recipient(email=bob.email), Decimal(30), "t1", META)
    )
    await position_events(world)

    killed = await asyncio.create_subprocess_exec(
        sys.executable, "-c", KILLED_MID_BATCH, integration_url
    )
    assert await asyncio.wait_for(killed.wait(), 60) == -signal.SIGKILL
    assert await notifications(world) == []  # its open transaction died with it

    restarted = notifier(world, smtp[1])
    await restarted.run_once()
    await restarted.run_once()
    assert await notifications(world) == sorted(
        [
            (alice.email, "deposit.credited"),
            (alice.email, "transfer.sent"),
            (bob.email, "transfer.received"),
        ]
    )
    assert [to[0] for _, to, _ in smtp[0].messages].count(bob.email) == 1


async def test_a_feed_keeps_the_order_of_events_written_in_one_round(
    world: World, smtp: tuple[Recorder, int]
) -> None:
    (alice, a), (bob, _) = await world.person(), await world.person()
    await world.deposit(alice, a, "100")
    for n in range(1, 6):
        await world.transfers.send(
            SendMoney(alice, a.id, Recipient(email=bob.email), Decimal(n), f"t{n}", META)
        )
    await position_events(world)
    await notifier(world, smtp[1]).step()  # one round, one clock reading
    async with world.uow(read_only=True) as uow:
        page = await uow.notifications.page(bob.id, first=10, after=None, unread_only=False)
    amounts = [re.findall(r"(\d+\.\d+) NGN", n.body)[0] for n in page.items]
    assert amounts == ["5.00", "4.00", "3.00", "2.00", "1.00"]  # newest first
