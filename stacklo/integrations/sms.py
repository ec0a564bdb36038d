"""SMS: the ``SmsSender`` port over a generic JSON HTTP API, and a log-only sender.

``HttpSmsSender`` speaks the shape most SMS gateways share: ``POST {base_url}/messages`` with
``{"to", "from", "text"}`` and ``Authorization: Bearer <key>``.

Failure policy (``DeliveryFailed.temporary``), which the notification worker relies on:

* temporary: no answer (connection error, timeout, broken response), 408, 429 or 5xx: the
  gateway is down, slow or throttling, and the same request may well succeed later;
* permanent: any other answer that is not 2xx (a 400 for a bad number, 401/403 for a bad
  key, a redirect from a wrong URL): sending it again would get the same answer.

The reason carries the status and the start of the gateway's answer (never the key). A
timeout after the request went out leaves its fate unknown and counts as temporary, so a
retried SMS may arrive twice: for a notification, better than not at all.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Final, Self

import httpx

from stacklo.domain.ports import DeliveryFailed
from stacklo.observability import log

if TYPE_CHECKING:
    from stacklo.domain.ports import SmsSender

__all__ = ["HttpSmsSender", "LogSmsSender"]

_TEMPORARY_STATUSES: Final = frozenset({408, 429})
_REASON_CHARS: Final = 200  # of the gateway's answer kept in the reason


class HttpSmsSender:
    """``SmsSender`` over a JSON HTTP gateway. One instance per process; close it with
    ``aclose()`` (or ``async with``) when it made its own client."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        sender_id: str,
        client: httpx.AsyncClient | None = None,
        *,
        timeout: float = 10.0,
    ) -> None:
        """
        Args:
            base_url: the API root; messages go to ``{base_url}/messages``.
            api_key: sent as a bearer token, only in the Authorization header.
            sender_id: the ``from`` of every message (an alphanumeric id or a number, as
                registered with the gateway).
            client: a shared client (its own timeouts apply); when omitted one is made with
                ``timeout`` and closed by ``aclose()``.
            timeout: seconds for each step of a request (connect, write, read, pool).
        """
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        if not api_key:
            raise ValueError("an SMS API key is required")
        if not sender_id:
            raise ValueError("an SMS sender id is required")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._url = base_url.rstrip("/") + "/messages"
        self._headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
        self._sender_id = sender_id
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False
        )

    async def send(self, to: str, text: str) -> None:
        """Hand the message to the gateway; raises DeliveryFailed (see the module)."""
        try:
            response = await self._client.post(
                self._url,
                json={"to": to, "from": self._sender_id, "text": text},
                headers=self._headers,
            )
        except httpx.HTTPError as e:  # transport errors and timeouts: no usable answer
            raise DeliveryFailed(f"SMS gateway {type(e).__name__}: {e}", temporary=True) from e
        status = response.status_code
        if 200 <= status < 300:
            return
        temporary = status in _TEMPORARY_STATUSES or status >= 500
        answer = " ".join(response.text.split())[:_REASON_CHARS]
        raise DeliveryFailed(f"SMS gateway answered {status}: {answer}", temporary=temporary)

    async def aclose(self) -> None:
        """Close the client if this sender made it (a shared one is its owner's to close)."""
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class LogSmsSender:
    """``SmsSender`` for the embedded default: nothing leaves the machine; the message is
    logged, so a developer can read what a user would have received."""

    async def send(self, to: str, text: str) -> None:
        log.info("sms_logged", to=to, text=text)


if TYPE_CHECKING:

    def _conforms(http: HttpSmsSender, logged: LogSmsSender) -> tuple[SmsSender, ...]:
        return http, logged
