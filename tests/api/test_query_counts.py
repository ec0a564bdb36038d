"""Reads run a fixed number of SQL statements whatever the page size: a list's rows are
resolved through batch loaders, never one query per row (N+1).

How statements are counted: this module runs the real application (``create_app``) in the
test process under uvicorn on a free port, and the tests talk to it over real HTTP, as every
API test does. A SQLAlchemy ``before_cursor_execute`` listener sees every statement the
server's engine sends and files it under the request id the observability middleware holds
for that request (the tests send their own ``x-request-id``); batch loaders run in tasks
started by the request, which inherit its context, so their statements are filed under it
too, and anything else (the session sweep, another request) is not. PostgreSQL cannot give
per-request figures here: pg_stat_statements is not preloaded on the test server, and a
backend publishes its pg_stat_database counters lazily (an idle one may hold them until it
exits). Everything a request runs is counted, the authentication query included: it is one
query whatever the page size (checked on every request here, with no viewer cache, so the
figure does not depend on how long ago the viewer was last read).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
import uvicorn
from sqlalchemy import event
from sqlalchemy.engine import Engine

from bench.reads import ACTIVITY, CHECKOUTS
from stacklo.app import create_app
from stacklo.config import Settings
from stacklo.observability import request_id_var
from tests.api.test_checkout import create, refund, verified_merchant
from tests.api.test_installments import APPLY
from tests.conftest import Databases, free_port, server_env
from tests.helpers import (
    PASSWORD,
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    key,
    send,
    sign_up,
    unique_email,
    verify_identity,
)

PAGE_SIZES = (1, 5, 20)

# The documents: a wallet app's activity screen and a merchant's dashboard (bench/reads.py
# times the same two).

# The statements each query runs, at any page size (asserted, so a regression shows).
# Activity: the viewer (session check and user in one), its wallets, the page, the status
# histories, the entries, both wallets of every transfer, their owners.
ACTIVITY_STATEMENTS = 7
# Checkouts: the viewer, its merchant, pendingSettlement, the page, the payments, the refunds'
# ids, the plans, their installments, the payers' wallets, the refund transactions, the payers.
CHECKOUT_STATEMENTS = 11

PAY = """mutation($i: PayCheckoutInput!) { payCheckout(input: $i) {
  checkout { status } userErrors { code message field } } }"""


@dataclass
class Statements:
    """Every statement the server's engines ran, by the request id it ran under."""

    by_request: defaultdict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def __call__(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        request_id = request_id_var.get()
        if request_id is not None:
            self.by_request[request_id].append(statement)


@dataclass
class Counted:
    """The in-process server, its database, and what it ran."""

    base_url: str
    database_url: str
    env: dict[str, str]
    statements: Statements


class _InProcess(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # Ctrl-C stays pytest's


def _settings(env: dict[str, str]) -> Settings:
    """Settings read from ``env`` exactly as ``stacklo serve`` reads its environment."""
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("STACKLO_") or name in ("DATABASE_URL", "REDIS_URL"):
                patch.delenv(name)
        for name, value in env.items():
            if name.startswith("STACKLO_"):
                patch.setenv(name, value)
        return Settings()


@pytest.fixture(scope="module")
def counted_env(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A database of its own; no relay, rate feed or scheduler: only requests touch it."""
    url = databases.create("query_counts")
    folder = tmp_path_factory.mktemp("query_counts")
    return server_env(
        url,
        folder,
        STACKLO_RUN_WORKER_IN_PROCESS="false",
        STACKLO_VIEWER_CACHE_SECONDS="0",
        STACKLO_LOG_LEVEL="WARNING",
    )


@pytest.fixture(scope="module")
async def counted(counted_env: dict[str, str]) -> AsyncIterator[Counted]:
    env = counted_env
    statements = Statements()
    event.listen(Engine, "before_cursor_execute", statements)
    port = free_port()
    server = _InProcess(
        uvicorn.Config(
            create_app(_settings(env)),
            host="127.0.0.1",
            port=port,
            proxy_headers=False,
            log_level="warning",
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(60):
            while not server.started:
                assert not serving.done(), "the in-process server did not start"
                await asyncio.sleep(0.05)
        yield Counted(f"http://127.0.0.1:{port}", env["STACKLO_DATABASE_URL"], env, statements)
    finally:
        server.should_exit = True
        await serving
        event.remove(Engine, "before_cursor_execute", statements)


@pytest.fixture(scope="module")
async def http(counted: Counted) -> AsyncIterator[GraphQLHTTP]:
    client = GraphQLHTTP(counted.base_url)
    yield client
    await client.aclose()


async def statements_of(
    counted: Counted, http: GraphQLHTTP, query: str, first: int, token: str
) -> tuple[dict[str, Any], list[str]]:
    """The query's data and the statements the server ran answering it."""
    request_id = uuid.uuid4().hex
    response = await http.http.post(
        "/graphql",
        json={"query": query, "variables": {"first": first}},
        headers={"authorization": f"Bearer {token}", "x-request-id": request_id},
    )
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == request_id
    body = response.json()
    assert "errors" not in body, body
    return body["data"], counted.statements.by_request.pop(request_id, [])


async def counts_by_page_size(
    counted: Counted, http: GraphQLHTTP, query: str, token: str, edges: Any
) -> dict[int, list[str]]:
    """Statements per page size, each page checked full; a first run warms the pool up."""
    await statements_of(counted, http, query, max(PAGE_SIZES), token)
    found: dict[int, list[str]] = {}
    for first in PAGE_SIZES:
        data, ran = await statements_of(counted, http, query, first, token)
        assert len(edges(data)) == first
        found[first] = ran
    return found


def shown(found: dict[int, list[str]]) -> str:
    return "\n".join(
        f"first={first}: {len(ran)} statements\n  " + "\n  ".join(s[:160] for s in ran)
        for first, ran in found.items()
    )


async def _admin(counted: Counted, http: GraphQLHTTP) -> str:
    email = unique_email("admin")
    made = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "stacklo", "create-admin", "--email", email, "--password", PASSWORD],
        env=counted.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return await admin_token(http, (email, PASSWORD))


async def _borrower(counted: Counted, http: GraphQLHTTP, admin: str) -> SignedUp:
    """A verified user, a year old, with money coming in and APPROVED credit."""
    user = await sign_up(http)
    await verify_identity(http, user, admin)
    for _ in range(3):
        await deposit(http, user, "400000")
    raw_id = base64.b64decode(user.id).decode().split(":", 1)[1]
    conn = await asyncpg.connect(counted.database_url.replace("+asyncpg", "", 1))
    try:
        await conn.execute(
            "UPDATE users SET created_at = now() - interval '400 days' WHERE id = $1::uuid", raw_id
        )
    finally:
        await conn.close()
    applied = (
        await http.data(
            APPLY, {"i": {"monthlyIncome": "900000", "employmentStatus": "EMPLOYED"}}, user.access
        )
    )["applyForCredit"]
    assert applied["creditProfile"]["status"] == "APPROVED", applied
    return user


async def _pay(
    http: GraphQLHTTP, payer: SignedUp, checkout_id: str, product: str | None = None
) -> None:
    method = {"method": "INSTALLMENTS", "product": product} if product else {"method": "WALLET"}
    paid = (
        await http.data(
            PAY,
            {
                "i": {
                    "checkoutId": checkout_id,
                    "walletId": payer.user["wallets"][0]["id"],
                    "idempotencyKey": key(),
                    **method,
                }
            },
            payer.access,
        )
    )["payCheckout"]
    assert paid["userErrors"] == [] and paid["checkout"]["status"] == "PAID", paid


async def test_an_activity_screen_runs_the_same_statements_at_every_page_size(
    counted: Counted, http: GraphQLHTTP
) -> None:
    viewer = await sign_up(http, fullName="Ada Obi")
    friends = [await sign_up(http, fullName=f"Friend Number{i}") for i in range(3)]
    await deposit(http, viewer, "100000")
    for friend in friends:
        await deposit(http, friend, "10000")
    # Sent and received transfers with three people, the newest one sent: every page, the
    # one-row page included, has a transfer whose other side must be looked up.
    for i in range(24):
        friend = friends[i % 3]
        sender, recipient = (viewer, friend) if i % 2 else (friend, viewer)
        sent = await send(http, sender, {"walletId": recipient.user["wallets"][0]["id"]}, "10.00")
        assert sent["userErrors"] == [], sent

    found = await counts_by_page_size(
        counted, http, ACTIVITY, viewer.access, lambda d: d["me"]["transactions"]["edges"]
    )
    assert {len(ran) for ran in found.values()} == {ACTIVITY_STATEMENTS}, shown(found)


async def test_a_merchants_checkouts_run_the_same_statements_at_every_page_size(
    counted: Counted, http: GraphQLHTTP
) -> None:
    admin = await _admin(counted, http)
    owner, merchant_id = await verified_merchant(http, admin)
    borrower = await _borrower(counted, http, admin)
    # Oldest first, so the newest (the one-row page) is financed and partly refunded: every
    # page asks for a payment, its payer, refunds and a plan. Older ones are a mix: paid from
    # a wallet, refunded, financed, and still open.
    for i in range(22):
        checkout_id = (await create(http, owner, merchant_id, "20000", reference=f"order-{i}"))[
            "checkout"
        ]["id"]
        shape = (i + 2) % 4  # the last one is shape 3
        if shape == 0:
            continue  # open
        await _pay(http, borrower, checkout_id, "PAY_IN_4" if shape == 3 else None)
        if shape in (2, 3):
            refunded = await refund(http, owner, checkout_id, "1000.00")
            assert refunded["userErrors"] == [], refunded

    found = await counts_by_page_size(
        counted,
        http,
        CHECKOUTS,
        owner.access,
        lambda d: d["me"]["merchant"]["checkouts"]["edges"],
    )
    assert {len(ran) for ran in found.values()} == {CHECKOUT_STATEMENTS}, shown(found)
