"""Many clients, random transfers among a few wallets, opposite directions at once."""

import asyncio
import random
import subprocess
import sys
from decimal import Decimal

from tests.conftest import Server
from tests.helpers import GraphQLHTTP, deposit, send, sign_up, wallets

USERS = 5
START = Decimal("1000.00")


async def test_concurrent_transfers_conserve_money_and_pass_ledger_verify(server: Server) -> None:
    clients = [GraphQLHTTP(server.base_url) for _ in range(8)]
    setup = clients[0]
    users = [await sign_up(setup) for _ in range(USERS)]
    for user in users:
        await deposit(setup, user, str(START))
    rng = random.Random(7)
    expected = {u.id: START for u in users}
    outcomes: dict[str, int] = {}

    async def transfer(client: GraphQLHTTP, a: int, b: int, amount: Decimal) -> None:
        source, target = users[a], users[b]
        result = await send(
            client, source, {"walletId": target.user["wallets"][0]["id"]}, str(amount)
        )
        if result["userErrors"]:
            code = result["userErrors"][0]["code"]
            assert code == "INSUFFICIENT_FUNDS", result
            outcomes[code] = outcomes.get(code, 0) + 1
            return
        assert result["transaction"]["status"] == "COMPLETED"
        expected[source.id] -= amount
        expected[target.id] += amount
        outcomes["ok"] = outcomes.get("ok", 0) + 1

    for _ in range(6):
        batch = []
        for i in range(40):
            a, b = rng.sample(range(USERS), 2)
            amount = Decimal(rng.randint(1, 40000)).scaleb(-2)
            batch.append(transfer(clients[i % len(clients)], a, b, amount))
            # The deadlock case: the same pair in opposite directions, at once.
            batch.append(transfer(clients[(i + 1) % len(clients)], b, a, amount))
        await asyncio.gather(*batch)

    balances = {}
    for user in users:
        wallet = (await wallets(setup, user))["NGN"]
        balances[user.id] = Decimal(wallet["balance"]["amount"])
        assert balances[user.id] >= 0
    assert sum(balances.values()) == START * USERS
    assert balances == expected
    assert outcomes.get("ok", 0) > 100
    for c in clients:
        await c.aclose()

    verify = subprocess.run(  # noqa: ASYNC221 - the load is over; blocking here is fine
        [sys.executable, "-m", "stacklo", "ledger", "verify"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "deadlock" not in server.log_text().lower()
