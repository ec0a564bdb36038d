"""The /ops dashboard in a real browser (Chromium through playwright-core,
``tests/clients/ops.mjs``): a staff member signs in, and a transfer made through the API shows in
the live feed within two seconds of the API answering; a transfer made while the socket is down
arrives once it is back (resumed after the last cursor), exactly once; the tiles show numbers;
nothing breaks the CSP. With short-lived tokens, the page refreshes ahead of expiry and rides
through the server closing its socket (4403); a session ended elsewhere signs the page out.

Each test prints the delays it measured (``pytest -s`` shows them): from the API answering a
transfer until the browser finds it on the page."""

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.clients import CHROMIUM_FLAGS, chromium, run_node
from tests.conftest import Databases, Server, own_server
from tests.helpers import PASSWORD, REFRESH, GraphQLHTTP, deposit, sign_up, unique_email

SHOWN_WITHIN_MS = 2000


def _report(test: str, delays_ms: list[int]) -> None:
    print(f"\n/ops {test}: API answered -> transfer shown on the page: {delays_ms} ms")


async def test_staff_watch_transfers_live_and_resume_after_a_drop(
    server: Server, client: GraphQLHTTP, admin_credentials: tuple[str, str]
) -> None:
    sender = await sign_up(client)
    receiver = await sign_up(client)
    await deposit(client, sender, "100.00")
    email, password = admin_credentials

    seen = await run_node(
        "ops.mjs",
        "live",
        server.base_url,
        chromium(),
        email,
        password,
        sender.email,
        PASSWORD,
        sender.user["wallets"][0]["id"],
        receiver.email,
        *CHROMIUM_FLAGS,
    )

    # Everything loaded and ran under the page's CSP, quietly.
    assert seen["consoleErrors"] == []
    assert seen["pageErrors"] == []
    assert seen["cspViolations"] == []
    assert seen["failedAssets"] == []

    # Signed in through the form (after a wrong password), tokens in this tab only.
    assert "incorrect" in seen["wrongPasswordError"].lower()
    assert seen["signedInAs"] == email
    assert seen["sessionStorageHasToken"] is True
    assert seen["tokenInLocalStorage"] is False
    assert seen["socketInits"][0] == {"authorization": seen["bearer"]}

    # The tiles show numbers from platformStats.
    tiles = seen["tilesAtStart"]
    for name, value in tiles.items():
        assert re.fullmatch(r"\d[\d,]*(\.\d% \(\d+ of \d+\))?", value), (name, value)
    assert re.fullmatch(r"\d+\.\d% \(\d+ of \d+\)", tiles["failureRate"])
    assert int(tiles["userCount"].replace(",", "")) >= 3
    assert any(line.startswith("NGN ") for line in seen["volumeAtStart"]), seen["volumeAtStart"]

    # Each transfer showed within two seconds of the API answering.
    assert seen["warmUp"] is not None, "the feed never went live"
    _report("live", seen["delaysMs"])
    assert len(seen["delaysMs"]) == 4  # three, and one after the reconnect
    assert all(0 <= d <= SHOWN_WITHIN_MS for d in seen["delaysMs"]), seen["delaysMs"]

    # Dropped: the transfer made meanwhile did not arrive until the socket was back, then it
    # did, because the page resubscribed after the last cursor it had.
    assert seen["shownWhileDown"] is False
    assert seen["cursorBeforeDrop"]
    assert seen["resubscribedWith"][0] == {"after": seen["cursorBeforeDrop"]}
    feed = seen["feed"]
    references = [item["reference"] for item in feed]
    for reference in (seen["warmUp"], *seen["timed"], seen["missed"], seen["afterReconnect"]):
        assert reference in references
    # Newest first, and nothing twice (the replay starts after what was seen).
    assert references.index(seen["afterReconnect"]) < references.index(seen["missed"])
    pairs = [(item["reference"], item["status"]) for item in feed]
    assert len(pairs) == len(set(pairs)), pairs
    missed = next(item for item in feed if item["reference"] == seen["missed"])
    assert missed["kind"] == "TRANSFER" and missed["amount"] == "NGN 3.00"

    # The tiles follow, the rates tick, and the page says it is live.
    assert int(seen["transfersTile"]) >= 6
    assert int(seen["subscribersTile"]) >= 1  # this page's own, at least
    assert seen["rates"] and all(re.fullmatch(r"[\d,]+\.\d+", r["mid"]) for r in seen["rates"])
    assert {r["pair"] for r in seen["rates"]} >= {"USD/NGN"}
    assert seen["statusText"] == "Live"

    # A reload keeps the sign-in (sessionStorage); signing out ends the session on the server.
    assert seen["afterReloadState"] == "live"
    assert seen["logOutAnswer"] == {"logOut": {"success": True, "userErrors": []}}
    assert seen["afterSignOut"] == {"session": None, "state": "signed-out", "dashboardHidden": True}
    revoked = (await client.data(REFRESH, {"t": seen["refreshTokenAtSignOut"]}))["refreshSession"]
    assert revoked["session"] is None
    assert [e["code"] for e in revoked["userErrors"]] == ["INVALID_TOKEN"]


# Access tokens live 20 s there: refreshed 15 s in (a quarter of their life ahead), so the
# server closes the socket with the old one 5 s later.
SHORT_TOKEN_SECONDS = "20"


@pytest.fixture(scope="module")
def short_token_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with own_server(
        databases,
        tmp_path_factory,
        "ops_expiry",
        STACKLO_ACCESS_TOKEN_TTL_SECONDS=SHORT_TOKEN_SECONDS,
    ) as running:
        yield running


def _create_admin(server: Server) -> str:
    email = unique_email("admin")
    made = subprocess.run(
        [sys.executable, "-m", "stacklo", "create-admin", "--email", email, "--password", PASSWORD],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    return email


async def test_the_page_outlives_its_access_token_and_signs_out_when_the_session_ends(
    short_token_server: Server,
) -> None:
    server = short_token_server
    email = _create_admin(server)
    client = GraphQLHTTP(server.base_url)
    try:
        sender = await sign_up(client)
        receiver = await sign_up(client)
        await deposit(client, sender, "100.00")
    finally:
        await client.aclose()

    seen = await run_node(
        "ops.mjs",
        "expiry",
        server.base_url,
        chromium(),
        email,
        PASSWORD,
        sender.email,
        PASSWORD,
        sender.user["wallets"][0]["id"],
        receiver.email,
        *CHROMIUM_FLAGS,
    )

    assert seen["consoleErrors"] == []
    assert seen["pageErrors"] == []
    assert seen["cspViolations"] == []
    assert seen["warmUp"] is not None, "the feed never went live"
    _report("expiry", seen["delaysMs"])

    # The old token expired on the socket: the server closed it (4403), the page came back
    # with the token it had refreshed ahead of time, resuming after its last cursor.
    assert 4403 in seen["closeCodes"], seen["closeCodes"]
    assert seen["bearers"] >= 2
    assert seen["renewedSessionToken"] is True
    assert seen["resubscribedAfterExpiry"]["after"]
    assert seen["errorShown"] is False
    assert len(seen["delaysMs"]) == 4  # three, and one after the socket came back
    assert all(0 <= d <= SHOWN_WITHIN_MS for d in seen["delaysMs"]), seen["delaysMs"]

    # Ended elsewhere (another tab signed out): the socket is closed, the refresh refused, and
    # the page goes back to its sign-in form, saying why.
    assert seen["endedElsewhere"] == {"success": True, "userErrors": []}
    assert "session ended" in seen["endedMessage"].lower()
    assert seen["afterEnded"] == {"session": None, "state": "signed-out"}
