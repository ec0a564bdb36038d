"""HttpSmsSender against a real HTTP server (stdlib ``http.server``) on 127.0.0.1.

The server records each request and answers with the status a test scripts, so every
failure class comes over a real connection. No database is needed.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from stacklo.domain.ports import DeliveryFailed
from stacklo.integrations.sms import HttpSmsSender, LogSmsSender

API_KEY = "sms-test-key-0123456789"
SENDER_ID = "Stacklo"
TO = "+2348012345678"


@dataclass
class Gateway:
    """What the fake gateway does: ``answers`` are (status, body) used one per request, then
    202; ``delay`` seconds before answering."""

    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[tuple[int, str]] = field(default_factory=list)
    delay: float = 0.0


def handler_for(gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            gateway.requests.append(
                {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
            )
            time.sleep(gateway.delay)
            status, text = gateway.answers.pop(0) if gateway.answers else (202, '{"id":"m1"}')
            payload = text.encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except ConnectionError:
                pass  # the client gave up waiting (the timeout test)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet test output

    return Handler


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    state = Gateway(base_url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(state))
    server.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    # A short poll, so shutdown() does not wait the default half second per test.
    thread = threading.Thread(
        target=server.serve_forever, args=(0.02,), name="fake SMS gateway", daemon=True
    )
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_a_2xx_delivers_the_message_as_the_gateway_expects(gateway: Gateway) -> None:
    async with HttpSmsSender(gateway.base_url, API_KEY, SENDER_ID, timeout=2) as sms:
        await sms.send(TO, "Stacklo: you received NGN 5,000.00. Ref STK-1")

    [request] = gateway.requests
    assert request["path"] == "/v1/messages"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["json"] == {
        "to": TO,
        "from": SENDER_ID,
        "text": "Stacklo: you received NGN 5,000.00. Ref STK-1",
    }


async def test_200_is_delivered(gateway: Gateway) -> None:
    gateway.answers = [(200, '{"status":"queued"}')]
    async with HttpSmsSender(gateway.base_url + "/", API_KEY, SENDER_ID, timeout=2) as sms:
        await sms.send(TO, "text")
    assert [r["path"] for r in gateway.requests] == ["/v1/messages"]


@pytest.mark.parametrize(
    ("status", "temporary"),
    [(503, True), (500, True), (429, True), (408, True), (400, False), (401, False), (404, False)],
)
async def test_the_status_decides_temporary_or_permanent(
    gateway: Gateway, status: int, temporary: bool
) -> None:
    gateway.answers = [(status, '{"error": "the gateway\'s own words"}')]
    async with HttpSmsSender(gateway.base_url, API_KEY, SENDER_ID, timeout=2) as sms:
        with pytest.raises(DeliveryFailed) as failed:
            await sms.send(TO, "text")

    assert failed.value.temporary is temporary
    assert str(status) in failed.value.reason
    assert "the gateway's own words" in failed.value.reason
    assert API_KEY not in failed.value.reason


async def test_a_temporary_failure_then_success(gateway: Gateway) -> None:
    gateway.answers = [(503, "busy")]
    async with HttpSmsSender(gateway.base_url, API_KEY, SENDER_ID, timeout=2) as sms:
        with pytest.raises(DeliveryFailed):
            await sms.send(TO, "text")
        await sms.send(TO, "text")
    assert len(gateway.requests) == 2


async def test_a_long_error_body_is_cut_in_the_reason(gateway: Gateway) -> None:
    gateway.answers = [(400, "x" * 10_000)]
    async with HttpSmsSender(gateway.base_url, API_KEY, SENDER_ID, timeout=2) as sms:
        with pytest.raises(DeliveryFailed) as failed:
            await sms.send(TO, "text")
    assert len(failed.value.reason) < 300


async def test_a_closed_port_is_temporary() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with HttpSmsSender(f"http://127.0.0.1:{port}", API_KEY, SENDER_ID, timeout=2) as sms:
        with pytest.raises(DeliveryFailed) as failed:
            await sms.send(TO, "text")
    assert failed.value.temporary is True
    assert "ConnectError" in failed.value.reason


async def test_a_slow_gateway_times_out_as_temporary(gateway: Gateway) -> None:
    gateway.delay = 1.0
    async with HttpSmsSender(gateway.base_url, API_KEY, SENDER_ID, timeout=0.2) as sms:
        with pytest.raises(DeliveryFailed) as failed:
            await sms.send(TO, "text")
    assert failed.value.temporary is True
    assert "Timeout" in failed.value.reason


async def test_a_shared_client_is_used_and_left_open(gateway: Gateway) -> None:
    async with httpx.AsyncClient(timeout=2) as client:
        sms = HttpSmsSender(gateway.base_url, API_KEY, SENDER_ID, client)
        await sms.send(TO, "one")
        await sms.aclose()
        assert not client.is_closed
        await sms.send(TO, "two")
    assert [r["json"]["text"] for r in gateway.requests] == ["one", "two"]


def test_settings_that_cannot_work_are_refused_at_once() -> None:
    with pytest.raises(ValueError, match="URL"):
        HttpSmsSender("127.0.0.1:8080", API_KEY, SENDER_ID)
    with pytest.raises(ValueError, match="key"):
        HttpSmsSender("http://127.0.0.1:8080", "", SENDER_ID)
    with pytest.raises(ValueError, match="sender"):
        HttpSmsSender("http://127.0.0.1:8080", API_KEY, "")


async def test_the_log_sender_succeeds() -> None:
    await LogSmsSender().send(TO, "Stacklo: text")
