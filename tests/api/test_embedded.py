"""The embedded default: no DATABASE_URL starts PostgreSQL from the pgserver wheel."""

import contextlib
from pathlib import Path

from tests.api.test_subscriptions import live, next_event
from tests.conftest import server_env, start_server, stop_server
from tests.helpers import LOG_IN, PASSWORD, GraphQLHTTP, deposit, send, sign_up


async def test_starts_from_an_empty_folder_and_survives_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    env = server_env(None, data)
    env.pop("STACKLO_JWT_SECRET")  # embedded: generated once, kept in the data folder
    log = tmp_path / "server.log"

    process, base = start_server(env, log)
    try:
        client = GraphQLHTTP(base)
        user = await sign_up(client, homeCurrency="EUR")
        await client.aclose()
    finally:
        stop_server(process)
    assert (data / "pg" / "PG_VERSION").exists()
    assert not (data / "pg" / "postmaster.pid").exists()  # the embedded server stopped with us
    assert (data / "jwt-secret").exists()

    # Again, with two worker processes sharing the one embedded server.
    process, base = start_server(env, log, args=("--workers", "2"))
    try:
        client = GraphQLHTTP(base)
        me = await client.data("{ me { email wallets { currency { code } } } }", token=user.access)
        assert me["me"] == {"email": user.email, "wallets": [{"currency": {"code": "EUR"}}]}
        logged = await client.data(LOG_IN, {"input": {"email": user.email, "password": PASSWORD}})
        assert logged["logIn"]["userErrors"] == []
        # Live events reach subscribers on either worker process (fan-out without Redis).
        bob = await sign_up(client, homeCurrency="EUR")
        await deposit(client, user, "10", wallet_id=user.user["wallets"][0]["id"])
        ws_url = base.replace("http", "ws", 1) + "/graphql"
        query = "subscription { walletUpdated { wallet { balance { amount } } } }"
        async with contextlib.AsyncExitStack() as stack:
            queues = [
                await stack.enter_async_context(live(ws_url, bob.access, query)) for _ in range(4)
            ]
            await send(client, user, {"email": bob.email}, "2.50")
            for queue in queues:
                event = await next_event(queue)
                assert event["walletUpdated"]["wallet"]["balance"] == {"amount": "2.50"}
        await client.aclose()
    finally:
        stop_server(process)
    assert not (data / "pg" / "postmaster.pid").exists()
    text = log.read_text()
    assert "Traceback" not in text
    # Where to go, for people and for log collectors: once per start, whatever the workers.
    assert text.count("Stacklo is listening on http://127.0.0.1:") == 2
    assert "/graphql (open it in a browser for GraphiQL; WebSocket: ws://127.0.0.1:" in text
    assert text.count('"event": "listening"') == 2
