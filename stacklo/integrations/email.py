"""Email: the ``EmailSender`` port over SMTP (aiosmtplib), and a log-only sender.

Failure policy (``DeliveryFailed.temporary``), which the notification worker relies on:

* temporary: the server could not be reached, the connection dropped, an operation timed
  out, or the server answered 4xx (421 closing, 450/451 greylisting, 452 mailbox full):
  the same message may well go through later;
* permanent: the server answered 5xx (no such mailbox, refused as spam, credentials
  refused), lacks what the settings or the message need (STARTTLS, AUTH, SMTPUTF8), or the
  address cannot be put in a message at all: sending again would get the same answer.

The reason names the SMTP step and carries the server's code and words (never the password).
A timeout after the message went out leaves its fate unknown and counts as temporary, so a
retried message may arrive twice: for a notification, better than not at all.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import TYPE_CHECKING, Final

import aiosmtplib

from stacklo.domain.ports import DeliveryFailed
from stacklo.observability import log

if TYPE_CHECKING:
    from stacklo.domain.ports import EmailSender

__all__ = ["LogEmailSender", "SmtpSender"]

# One address, no display name, nothing that could end an SMTP command or a header line.
_ADDRESS: Final = re.compile(r"[^\s@<>,;\"]+@[^\s@<>,;\"]+")


class SmtpSender:
    """``EmailSender`` over SMTP: one connection per message, text and HTML alternatives.

    A connection per message keeps it simple and safe to share across tasks; notifications
    are few enough that the handshake does not matter.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        use_tls: bool = False,
        start_tls: bool | None = None,
        sender: str,
        timeout: float = 10,
    ) -> None:
        """
        Args:
            host, port: the SMTP server (a relay or the provider's submission endpoint).
            username, password: SMTP AUTH, both or neither.
            use_tls: TLS from the first byte (port 465).
            start_tls: True demands STARTTLS (a server without it is a permanent failure),
                False never sends it, None uses it when the server offers it.
            sender: the From header, an address or ``"Name <address>"``; its address is also
                the envelope sender and the Message-ID's domain.
            timeout: seconds for each network step (connect, each command, the data).
        """
        if not host:
            raise ValueError("an SMTP host is required")
        if use_tls and start_tls:
            raise ValueError("use_tls and start_tls cannot both be on")
        if (username is None) != (password is None):
            raise ValueError("username and password go together")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        address = parseaddr(sender)[1]
        if not _ADDRESS.fullmatch(address):
            raise ValueError(f"sender must be an email address, got {sender!r}")
        self._host = host
        self._port = port
        self._username = username
        self._password = password
        self._use_tls = use_tls
        self._start_tls = start_tls
        self._sender = sender
        self._envelope_sender = address
        # make_msgid() without a domain looks up this machine's FQDN, which can block on DNS.
        self._domain = address.rpartition("@")[2]
        self._timeout = timeout

    def _message(self, to: str, subject: str, text: str, html: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=self._domain)
        message.set_content(text)
        message.add_alternative(html, subtype="html")
        return message

    async def send(self, to: str, subject: str, text: str, html: str) -> None:
        """Hand the message to the server; raises DeliveryFailed (see the module)."""
        if not _ADDRESS.fullmatch(to):
            raise DeliveryFailed("the recipient is not a single email address", temporary=False)
        try:
            message = self._message(to, subject, text, html)
        except ValueError as e:  # a line break in the subject, say: same result every time
            raise DeliveryFailed(f"message cannot be built: {e}", temporary=False) from e
        try:
            await aiosmtplib.send(
                message,
                sender=self._envelope_sender,
                recipients=[to],
                hostname=self._host,
                port=self._port,
                username=self._username,
                password=self._password,
                use_tls=self._use_tls,
                start_tls=self._start_tls,
                timeout=self._timeout,
            )
        except aiosmtplib.SMTPRecipientsRefused as e:
            # Raised when every recipient is refused; there is exactly one.
            refusal = e.recipients[0]
            raise _answered("RCPT", refusal.code, refusal.message) from e
        except aiosmtplib.SMTPResponseException as e:
            raise _answered(_step(e), e.code, e.message) from e
        except (
            aiosmtplib.SMTPConnectError,
            aiosmtplib.SMTPServerDisconnected,
            aiosmtplib.SMTPTimeoutError,
        ) as e:
            raise DeliveryFailed(f"SMTP {type(e).__name__}: {e.message}", temporary=True) from e
        except aiosmtplib.SMTPException as e:
            # What is left: the server lacks what the settings or the message need (STARTTLS,
            # AUTH, SMTPUTF8); it will lack it next time too.
            raise DeliveryFailed(f"SMTP server: {e.message}", temporary=False) from e
        except (OSError, TimeoutError) as e:  # TLS handshake and socket errors aiosmtplib lets by
            raise DeliveryFailed(f"SMTP {type(e).__name__}: {e}", temporary=True) from e


def _step(error: aiosmtplib.SMTPResponseException) -> str:
    steps: list[tuple[type[aiosmtplib.SMTPResponseException], str]] = [
        (aiosmtplib.SMTPConnectResponseError, "greeting"),
        (aiosmtplib.SMTPHeloError, "EHLO"),
        (aiosmtplib.SMTPAuthenticationError, "AUTH"),
        (aiosmtplib.SMTPSenderRefused, "MAIL"),
        (aiosmtplib.SMTPRecipientRefused, "RCPT"),
        (aiosmtplib.SMTPDataError, "DATA"),
    ]
    return next((name for kind, name in steps if isinstance(error, kind)), "reply")


def _answered(step: str, code: int, message: str) -> DeliveryFailed:
    """5xx is the server's final no; 4xx (and anything unexpected) is worth another try."""
    return DeliveryFailed(f"SMTP {step} refused: {code} {message}", temporary=not 500 <= code < 600)


class LogEmailSender:
    """``EmailSender`` for the embedded default: nothing leaves the machine; the message is
    logged, so a developer can read what a user would have received."""

    async def send(self, to: str, subject: str, text: str, html: str) -> None:
        log.info("email_logged", to=to, subject=subject, text=text)


if TYPE_CHECKING:

    def _conforms(smtp: SmtpSender, logged: LogEmailSender) -> tuple[EmailSender, ...]:
        return smtp, logged
