"""HIGH 3 and MEDIUM 6: production runs on real parts only, and shows its schema to staff only.

Production refuses to start on the embedded database, without a JWT secret, on the sandbox
payment provider or the sandbox rate feed (unless staging opts in, loudly); the sandbox's
routes do not exist there; introspection and GraphiQL are for staff; validation errors do not
suggest field names; /metrics is not public.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import (
    JWT_SECRET,
    Databases,
    Server,
    free_port,
    server_env,
    start_server,
    stop_server,
)
from tests.helpers import PASSWORD, GraphQLHTTP, admin_token, sign_up, unique_email
from tests.security.conftest import METRICS_TOKEN, PAYSTACK_SECRET, Cluster, new_address
from tests.security.helpers import raw

INTROSPECTION = "{ __schema { queryType { name } } }"
TYPE_PROBE = '{ __type(name: "User") { fields { name } } }'


def _serve(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stacklo", "serve", "--port", str(free_port())],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _production_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = server_env(None, tmp_path / "data", STACKLO_ENV="production", **extra)
    env.pop("STACKLO_JWT_SECRET")
    return env


@pytest.mark.parametrize(
    ("missing", "said"),
    [
        ("DATABASE_URL", "embedded database"),
        ("STACKLO_JWT_SECRET", "STACKLO_JWT_SECRET"),
        ("PAYSTACK_SECRET_KEY", "sandbox payment provider"),
        ("STACKLO_RATE_FEED", "sandbox rate feed"),
    ],
)
def test_production_refuses_to_start_on_laptop_parts(
    tmp_path: Path, missing: str, said: str
) -> None:
    complete = {
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        "STACKLO_JWT_SECRET": JWT_SECRET,
        "PAYSTACK_SECRET_KEY": PAYSTACK_SECRET,
        "STACKLO_RATE_FEED": "coinbase",
    }
    del complete[missing]
    result = _serve(_production_env(tmp_path, **complete))
    assert result.returncode == 2, result.stderr
    assert said in result.stderr and "production refuses to start" in result.stderr
    assert not (tmp_path / "data" / "pg").exists()  # no embedded server was started


def test_the_worker_refuses_too(tmp_path: Path) -> None:
    env = _production_env(tmp_path, REDIS_URL="redis://127.0.0.1:6379/8")
    result = subprocess.run(
        [sys.executable, "-m", "stacklo", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "production refuses to start" in result.stderr


def test_staging_may_opt_into_the_sandbox_and_is_told_loudly(
    databases: Databases, tmp_path: Path
) -> None:
    env = server_env(
        databases.create("staging"),
        tmp_path,
        STACKLO_ENV="production",
        STACKLO_ALLOW_SANDBOX_IN_PRODUCTION="true",
    )
    process, base = start_server(env, tmp_path / "server.log")
    try:
        log = (tmp_path / "server.log").read_text()
        assert log.count("sandbox_in_production") == 2  # the provider and the rate feed
        page = httpx.post(base + "/sandbox/paystack/transfers/TXN-AAAAAAAA", data={})
        assert page.status_code == 400  # the sandbox's own answer: its routes exist
    finally:
        stop_server(process)


async def test_production_serves_no_sandbox_route(production: Cluster) -> None:
    client = GraphQLHTTP(production.a.base_url, client_address=new_address())
    user = await sign_up(client)
    started = (
        await client.data(
            """mutation($i: StartDepositInput!) { startDeposit(input: $i) { paymentUrl
               transaction { reference } userErrors { code } } }""",
            {
                "i": {
                    "walletId": user.user["wallets"][0]["id"],
                    "amount": "250000",
                    "idempotencyKey": "k1",
                }
            },
            token=user.access,
        )
    )["startDeposit"]
    assert started["paymentUrl"].startswith(production.paystack.base_url)
    reference = started["transaction"]["reference"]
    for method, path in (
        ("POST", f"/sandbox/paystack/checkout/{reference}?amount=25000000&currency=NGN&sig=x"),
        ("POST", f"/sandbox/paystack/transfers/{reference}"),
        ("GET", f"/sandbox/paystack/checkout/{reference}"),
    ):
        response = await client.http.request(method, path, data={"outcome": "success"})
        assert response.status_code == 404
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    balance = await client.data("{ me { wallets { balance { amount } } } }", token=user.access)
    assert balance["me"]["wallets"][0]["balance"]["amount"] == "0.00"
    await client.aclose()


async def test_introspection_is_for_staff_in_production(production: Cluster) -> None:
    client = GraphQLHTTP(production.a.base_url, client_address=new_address())
    email, password = unique_email("admin"), PASSWORD
    made = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "stacklo", "create-admin", "--email", email, "--password", password),
        env=production.env,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    _, stderr = await made.communicate()
    assert made.returncode == 0, stderr
    customer = await sign_up(client)
    staff = await admin_token(client, (email, password))
    for query in (INTROSPECTION, TYPE_PROBE):
        for token in (None, customer.access):
            body = (await raw(client, query, token=token)).json()
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", body
            assert body.get("data") is None
        assert "errors" not in (await raw(client, query, token=staff)).json()
    await client.aclose()


async def test_production_does_not_suggest_field_names(production: Cluster) -> None:
    client = GraphQLHTTP(production.a.base_url, client_address=new_address())
    body = (await raw(client, "{ currencies { cod } }")).json()
    message = body["errors"][0]["message"]
    assert "Did you mean" not in message and "'code'" not in message
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    enum = (await raw(client, "{ me { wallet(currency: NG) { id } } }")).json()
    assert "NGN" not in enum["errors"][0]["message"]
    await client.aclose()


async def test_no_graphiql_and_no_public_metrics_in_production(production: Cluster) -> None:
    async with httpx.AsyncClient(base_url=production.a.base_url) as http:
        page = await http.get("/graphql", headers={"accept": "text/html"})
        assert page.status_code == 404 and "graphiql" not in page.text.lower()
        metrics = await http.get("/metrics")
        assert metrics.status_code == 404


async def test_metrics_need_their_token(tight: Server) -> None:
    async with httpx.AsyncClient(base_url=tight.base_url) as http:
        assert (await http.get("/metrics")).status_code == 401
        wrong = await http.get("/metrics", headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
        right = await http.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
        assert right.status_code == 200 and "stacklo_http_requests_total" in right.text
