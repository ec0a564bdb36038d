"""Health, readiness, metrics, request ids, masked unexpected errors."""

import re

import httpx

from tests.conftest import Server
from tests.helpers import GraphQLHTTP


async def test_health_and_readiness(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        assert (await http.get("/healthz")).json() == {"status": "ok"}
        assert (await http.get("/readyz")).json() == {"status": "ready"}


async def test_request_id_is_returned_and_echoed(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        fresh = await http.post("/graphql", json={"query": "{ currencies { code } }"})
        assert re.fullmatch(r"[0-9a-f]{32}", fresh.headers["x-request-id"])
        mine = await http.post(
            "/graphql", json={"query": "{ __typename }"}, headers={"x-request-id": "trace-12345678"}
        )
        assert mine.headers["x-request-id"] == "trace-12345678"
        junk = await http.get("/healthz", headers={"x-request-id": "bad id;drop"})
        assert re.fullmatch(r"[0-9a-f]{32}", junk.headers["x-request-id"])
    assert "trace-12345678" in server.log_text()  # structured log line carries it


async def test_metrics_count_operations_by_name_and_outcome(
    server: Server, client: GraphQLHTTP
) -> None:
    await client.post("query CurrencyList { currencies { code } }")
    await client.post("query Broken { users { edges { cursor } } }")
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        text = (await http.get("/metrics")).text
    assert re.search(
        r'stacklo_graphql_operations_total\{operation="CurrencyList",outcome="ok",type="query"\} [1-9]',
        text,
    )
    assert re.search(
        r'stacklo_graphql_operations_total\{operation="Broken",outcome="error",type="query"\} [1-9]',
        text,
    )
    assert "stacklo_graphql_operation_duration_seconds_bucket" in text
    assert "stacklo_unexpected_errors_total" in text


def test_logs_are_json_lines(server: Server) -> None:
    import json

    lines = [line for line in server.log_text().splitlines() if line.startswith("{")]
    assert lines
    for line in lines[-20:]:
        record = json.loads(line)
        assert {"event", "level", "timestamp"} <= set(record)
