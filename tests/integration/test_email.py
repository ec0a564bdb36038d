"""SmtpSender against a real SMTP server (aiosmtpd) on 127.0.0.1.

The server's handler records what arrives and answers from a script, so each failure class
is a real SMTP reply on a real connection. No database is needed.
"""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from stacklo.domain.ports import DeliveryFailed
from stacklo.integrations.email import LogEmailSender, SmtpSender

SENDER = "Stacklo <no-reply@stacklo.test>"
TO = "ada@example.com"
USER, PASSWORD = "relay-user", "relay-password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Recorder:
    """An aiosmtpd handler: records accepted messages; ``rcpt``/``data`` are scripted answers
    used (one each) before the server accepts again."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], EmailMessage]] = []
        self.authenticated: list[bool] = []
        self.rcpt: list[str] = []
        self.data: list[str] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.rcpt:
            return self.rcpt.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.data:
            return self.data.pop(0)
        message = email.message_from_bytes(envelope.original_content, policy=default)
        assert isinstance(message, EmailMessage)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        self.authenticated.append(bool(session.authenticated))
        return "250 Message accepted for delivery"


def authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (
        USER.encode(),
        PASSWORD.encode(),
    )
    # handled=False: aiosmtpd then answers the refusal itself (535).
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield recorder, controller.port
    finally:
        controller.stop()


@pytest.fixture
def smtp_with_auth() -> Iterator[tuple[Recorder, int]]:
    recorder = Recorder()
    controller = Controller(
        recorder,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticate,
        auth_require_tls=False,  # local test only: credentials in clear on 127.0.0.1
    )
    controller.start()
    try:
        yield recorder, controller.port
    finally:
        controller.stop()


def sender(port: int, **overrides: Any) -> SmtpSender:
    settings: dict[str, Any] = {"sender": SENDER, "timeout": 2}
    settings.update(overrides)
    return SmtpSender("127.0.0.1", port, **settings)


async def test_a_message_arrives_with_its_text_and_html_parts(
    smtp: tuple[Recorder, int],
) -> None:
    recorder, port = smtp
    await sender(port).send(
        TO, "Deposit received: NGN 5,000.00", "Plain words.\n", "<p>Plain <b>words</b>.</p>"
    )

    [(mail_from, rcpt_tos, message)] = recorder.messages
    assert mail_from == "no-reply@stacklo.test"
    assert rcpt_tos == [TO]
    assert message["Subject"] == "Deposit received: NGN 5,000.00"
    assert message["From"] == SENDER
    assert message["To"] == TO
    assert message["Message-ID"].endswith("@stacklo.test>")
    assert message["Date"]
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and rich is not None
    assert isinstance(plain, EmailMessage) and isinstance(rich, EmailMessage)
    assert plain.get_content().replace("\r\n", "\n") == "Plain words.\n"
    assert rich.get_content().strip() == "<p>Plain <b>words</b>.</p>"
    # Clients show the last alternative they can: HTML comes after the text.
    assert [part.get_content_type() for part in message.iter_parts()] == [
        "text/plain",
        "text/html",
    ]


async def test_non_ascii_text_and_subject_arrive_intact(smtp: tuple[Recorder, int]) -> None:
    recorder, port = smtp
    await sender(port).send(TO, "Dépôt reçu: ₦5,000", "Reçu ₦5,000 de Adébáyọ̀.", "<p>₦</p>")

    [(_, _, message)] = recorder.messages
    assert message["Subject"] == "Dépôt reçu: ₦5,000"
    plain = message.get_body(("plain",))
    assert isinstance(plain, EmailMessage)
    assert plain.get_content().strip() == "Reçu ₦5,000 de Adébáyọ̀."


async def test_451_on_data_is_temporary_and_the_next_try_goes_through(
    smtp: tuple[Recorder, int],
) -> None:
    recorder, port = smtp
    recorder.data = ["451 4.3.0 Try again later"]
    smtp_sender = sender(port)

    with pytest.raises(DeliveryFailed) as failed:
        await smtp_sender.send(TO, "Subject", "text", "<p>html</p>")
    assert failed.value.temporary is True
    assert "451" in failed.value.reason and "Try again later" in failed.value.reason
    assert recorder.messages == []

    await smtp_sender.send(TO, "Subject", "text", "<p>html</p>")
    assert len(recorder.messages) == 1


@pytest.mark.parametrize(
    ("rcpt", "data", "temporary", "code"),
    [
        ([], ["550 5.7.1 Message rejected as spam"], False, "550"),
        ([], ["554 5.6.0 Message content rejected"], False, "554"),
        ([], ["452 4.2.2 Mailbox full"], True, "452"),
        (["550 5.1.1 No such user here"], [], False, "550"),
        (["450 4.2.1 Mailbox busy, try later"], [], True, "450"),
        (["421 4.7.0 Closing connection"], [], True, "421"),
    ],
    ids=["data-550", "data-554", "data-452", "rcpt-550", "rcpt-450", "rcpt-421"],
)
async def test_reply_codes_decide_temporary_or_permanent(
    smtp: tuple[Recorder, int], rcpt: list[str], data: list[str], temporary: bool, code: str
) -> None:
    recorder, port = smtp
    recorder.rcpt, recorder.data = list(rcpt), list(data)

    with pytest.raises(DeliveryFailed) as failed:
        await sender(port).send(TO, "Subject", "text", "<p>html</p>")

    assert failed.value.temporary is temporary
    assert code in failed.value.reason
    assert recorder.messages == []


async def test_a_closed_port_is_temporary() -> None:
    with pytest.raises(DeliveryFailed) as failed:
        await sender(free_port()).send(TO, "Subject", "text", "<p>html</p>")
    assert failed.value.temporary is True


async def test_a_server_that_never_greets_times_out_as_temporary() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()  # the handshake completes in the backlog; nothing is ever said
        port = listening.getsockname()[1]
        with pytest.raises(DeliveryFailed) as failed:
            await sender(port, timeout=0.3).send(TO, "Subject", "text", "<p>html</p>")
    assert failed.value.temporary is True
    assert "Timeout" in failed.value.reason


async def test_credentials_are_used_and_a_refusal_is_permanent(
    smtp_with_auth: tuple[Recorder, int],
) -> None:
    recorder, port = smtp_with_auth

    await sender(port, username=USER, password=PASSWORD).send(TO, "Subject", "text", "<p>x</p>")
    assert recorder.authenticated == [True]

    with pytest.raises(DeliveryFailed) as failed:
        await sender(port, username=USER, password="wrong").send(TO, "S", "text", "<p>x</p>")
    assert failed.value.temporary is False
    assert "535" in failed.value.reason
    assert "wrong" not in failed.value.reason


async def test_starttls_demanded_from_a_server_without_it_is_permanent(
    smtp: tuple[Recorder, int],
) -> None:
    recorder, port = smtp
    with pytest.raises(DeliveryFailed) as failed:
        await sender(port, start_tls=True).send(TO, "Subject", "text", "<p>html</p>")
    assert failed.value.temporary is False
    assert "STARTTLS" in failed.value.reason
    assert recorder.messages == []


@pytest.mark.parametrize(
    "to",
    ["ada@example.com\r\nBcc: eve@example.com", "ada@example.com, eve@example.com", "ada", ""],
)
async def test_an_address_that_is_not_one_address_is_permanent_and_nothing_is_sent(
    smtp: tuple[Recorder, int], to: str
) -> None:
    recorder, port = smtp
    with pytest.raises(DeliveryFailed) as failed:
        await sender(port).send(to, "Subject", "text", "<p>html</p>")
    assert failed.value.temporary is False
    assert recorder.messages == []


async def test_a_line_break_in_the_subject_is_permanent(smtp: tuple[Recorder, int]) -> None:
    recorder, port = smtp
    with pytest.raises(DeliveryFailed) as failed:
        await sender(port).send(TO, "Hello\r\nBcc: eve@example.com", "text", "<p>html</p>")
    assert failed.value.temporary is False
    assert recorder.messages == []


def test_settings_that_cannot_work_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="sender"):
        SmtpSender("127.0.0.1", 25, sender="Stacklo")
    with pytest.raises(ValueError, match="together"):
        SmtpSender("127.0.0.1", 25, sender=SENDER, username="user")
    with pytest.raises(ValueError, match="use_tls"):
        SmtpSender("127.0.0.1", 465, sender=SENDER, use_tls=True, start_tls=True)


async def test_the_log_sender_succeeds() -> None:
    await LogEmailSender().send(TO, "Subject", "text", "<p>html</p>")
