"""Browsers on other origins: a page on an allowed origin runs a query (with its CORS
preflight) and a subscription in headless Chromium; a page elsewhere gets neither."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.clients import CHROMIUM_FLAGS, HERE, chromium, run_node
from tests.conftest import Databases, Server, own_server
from tests.helpers import GraphQLHTTP, sign_up


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Origins:
    allowed: str
    other: str
    api: Server


def _static(directory: Path) -> ThreadingHTTPServer:
    handler = functools.partial(_Quiet, directory=str(directory))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture(scope="module")
def origins(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Origins]:
    allowed, other = _static(HERE / "pages"), _static(HERE / "pages")
    allowed_origin = f"http://127.0.0.1:{allowed.server_address[1]}"
    try:
        with own_server(
            databases, tmp_path_factory, "browsers", STACKLO_CORS_ORIGINS=allowed_origin
        ) as api:
            yield Origins(allowed_origin, f"http://127.0.0.1:{other.server_address[1]}", api)
    finally:
        allowed.shutdown()
        other.shutdown()


async def _open(origins: Origins, origin: str) -> dict[str, object]:
    client = GraphQLHTTP(origins.api.base_url)
    user = await sign_up(client)
    await client.aclose()
    page = f"{origin}/app.html#api={origins.api.base_url}&token={user.access}"
    report: dict[str, object] = await run_node("browser.mjs", chromium(), page, *CHROMIUM_FLAGS)
    report["email"] = user.email
    return report


async def test_a_page_on_an_allowed_origin_queries_and_subscribes(origins: Origins) -> None:
    report = await _open(origins, origins.allowed)
    result = report["result"]
    assert isinstance(result, dict)
    query = result["query"]
    assert query["status"] == 200, report
    assert query["body"]["data"] == {"me": {"email": report["email"]}}
    # Headers a browser app reads are exposed to it.
    assert query["rateLimit"] and query["requestId"]
    event = result["subscription"]["event"]
    assert event["data"]["rateUpdated"]["base"] == "BTC"
    assert event["data"]["rateUpdated"]["quote"] == "USD"


async def test_a_page_elsewhere_is_refused_both_ways(origins: Origins) -> None:
    report = await _open(origins, origins.other)
    result = report["result"]
    assert isinstance(result, dict)
    assert "Failed to fetch" in result["query"]["error"]  # no CORS permission: blocked
    assert "error" in result["subscription"]  # the handshake's Origin is refused
    assert "event" not in result["subscription"]
    errors = " ".join(report["consoleErrors"])  # type: ignore[arg-type]
    assert "CORS policy" in errors
