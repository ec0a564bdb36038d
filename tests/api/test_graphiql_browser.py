"""GraphiQL in a real browser (Chromium through playwright-core, ``tests/clients/graphiql.mjs``):
the sign-in panel, the example query and a subscription run from the UI, which Authorization
wins, what is stored where, and a page that runs under its CSP without one console error."""

from stacklo.graphiql import DEFAULT_QUERY
from tests.clients import CHROMIUM_FLAGS, chromium, run_node
from tests.conftest import Server
from tests.helpers import PASSWORD, REFRESH, GraphQLHTTP, deposit, sign_up


async def test_sign_in_run_reload_and_sign_out_in_chromium(
    server: Server, client: GraphQLHTTP
) -> None:
    user = await sign_up(client)
    started = await deposit(client, user, "25.00")

    seen = await run_node(
        "graphiql.mjs",
        server.base_url + "/graphql",
        chromium(),
        user.email,
        PASSWORD,
        *CHROMIUM_FLAGS,
    )

    # Everything loaded and ran under the page's CSP, quietly.
    assert seen["consoleErrors"] == []
    assert seen["pageErrors"] == []
    assert seen["cspViolations"] == []
    assert seen["failedAssets"] == []

    # A first visit opens on the examples, with the sign-in panel open.
    assert seen["firstTabs"] == ["Me", "LiveRates"]
    assert seen["firstQuery"] == DEFAULT_QUERY
    assert "incorrect" in seen["wrongPasswordError"].lower()

    # Signed in: the tokens are in sessionStorage only, and every request carries them.
    assert seen["signedInAs"] == user.email
    assert seen["sessionStorageHasToken"] is True
    assert seen["tokenInLocalStorage"] is False
    bearer = seen["panelBearer"]
    assert seen["meSentWith"] == [bearer]
    me = seen["meResult"]["data"]["me"]
    assert "errors" not in seen["meResult"]
    assert me["email"] == user.email
    assert me["wallets"][0]["balance"] == {"amount": "25.00", "currency": "NGN"}
    refs = [edge["node"]["reference"] for edge in me["transactions"]["edges"]]
    assert refs == [started["transaction"]["reference"]]

    # A typed Authorization header wins, costs the panel nothing, and is not stored.
    assert seen["typedHeaderSentWith"] == ["Bearer typed-in-the-editor"]
    codes = [e["extensions"]["code"] for e in seen["typedHeaderResult"]["errors"]]
    assert codes == ["UNAUTHENTICATED"]
    assert seen["typedHeaderRefreshes"] == 0 and seen["stillSignedIn"] is True
    assert seen["typedHeaderInLocalStorage"] is False

    # The subscription ran over a socket signed in with the panel's token.
    assert seen["socketInits"] == [{"authorization": bearer}]
    rate = seen["subscriptionResult"]["data"]["rateUpdated"]
    assert (rate["base"], rate["quote"]) in {("BTC", "USD"), ("USD", "NGN")}

    # After a reload: still signed in (sessionStorage), headers not kept (not asked for).
    assert seen["afterReloadSignedInAs"] == user.email
    assert seen["afterReloadMe"]["data"]["me"]["email"] == user.email
    assert seen["afterReloadMeSentWith"] == [bearer]
    assert seen["headersAfterReload"] == ""

    # A refused token is refreshed once and the request goes through; a due one is refreshed
    # before anything is sent with it.
    assert seen["afterRefusedToken"] == {"refreshes": 1, "me": user.email, "renewed": True}
    assert seen["afterDueToken"] == {
        "firstOperation": "GraphiQLPanelRefresh",
        "refreshes": 1,
        "dueTokenSent": False,
    }

    # "Persist headers" on: the headers survive reloads, in the same tab.
    assert seen["persistedHeaders"] == ['{"X-Example":"kept"}'] * 2
    assert seen["tabsAfterReloads"] == seen["tabsBeforeReloads"] == ["Me", "LiveRates"]

    # Sign out: the storage is cleared and the session revoked on the server.
    assert seen["logOutAnswer"] == {"logOut": {"success": True, "userErrors": []}}
    assert seen["sessionAfterSignOut"] is None
    revoked = (await client.data(REFRESH, {"t": seen["refreshTokenAtSignOut"]}))["refreshSession"]
    assert revoked["session"] is None
    assert [e["code"] for e in revoked["userErrors"]] == ["INVALID_TOKEN"]
