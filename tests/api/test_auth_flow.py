"""Sign-up, log-in, refresh rotation, log-out and password change over real HTTP."""

import base64
import json
import time
import uuid

import jwt
import pytest

from tests.conftest import JWT_SECRET
from tests.helpers import LOG_IN, PASSWORD, REFRESH, GraphQLHTTP, sign_up, unique_email

ME = "{ me { id email fullName phoneNumber roles kycStatus createdAt wallets { currency { code } } } }"


async def test_sign_up_log_in_me(client: GraphQLHTTP) -> None:
    email = unique_email("Ada")
    signed = await sign_up(client, email=email, phoneNumber="+2348012345678", homeCurrency="GBP")
    assert signed.email == email.lower()
    assert signed.user["roles"] == ["CUSTOMER"] and signed.user["kycStatus"] == "PENDING"
    assert [w["balance"] for w in signed.user["wallets"]] == [{"amount": "0.00", "currency": "GBP"}]

    logged = (await client.data(LOG_IN, {"input": {"email": email.upper(), "password": PASSWORD}}))[
        "logIn"
    ]
    assert logged["userErrors"] == []
    me = (await client.data(ME, token=logged["session"]["accessToken"]))["me"]
    assert me["id"] == signed.id and me["phoneNumber"] == "+2348012345678"
    assert me["wallets"] == [{"currency": {"code": "GBP"}}]

    claims = jwt.decode(logged["session"]["accessToken"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert {"iss", "aud", "sub", "iat", "exp", "jti"} <= set(claims)


async def test_me_is_null_without_a_token(client: GraphQLHTTP) -> None:
    assert (await client.data("{ me { id } }")) == {"me": None}


async def test_wrong_password_and_unknown_email_are_the_same_error(client: GraphQLHTTP) -> None:
    signed = await sign_up(client)
    answers = []
    for email, password in ((signed.email, "not the password"), (unique_email(), PASSWORD)):
        result = (await client.data(LOG_IN, {"input": {"email": email, "password": password}}))[
            "logIn"
        ]
        assert result["session"] is None
        answers.append(result["userErrors"])
    assert answers[0] == answers[1]
    assert answers[0][0]["code"] == "INVALID_CREDENTIALS"


async def test_refresh_rotation_and_reuse_detection(client: GraphQLHTTP) -> None:
    signed = await sign_up(client)
    rotated = (await client.data(REFRESH, {"t": signed.refresh}))["refreshSession"]
    assert rotated["userErrors"] == []
    new_refresh = rotated["session"]["refreshToken"]
    assert new_refresh != signed.refresh
    assert (await client.data("{ me { id } }", token=rotated["session"]["accessToken"]))["me"][
        "id"
    ] == signed.id

    replay = (await client.data(REFRESH, {"t": signed.refresh}))["refreshSession"]
    assert replay["session"] is None
    assert replay["userErrors"][0]["code"] == "INVALID_TOKEN"
    # The family is revoked: the newest refresh token and every access token of it are dead.
    after = (await client.data(REFRESH, {"t": new_refresh}))["refreshSession"]
    assert after["userErrors"][0]["code"] == "INVALID_TOKEN"
    body = await client.post("{ me { id } }", token=rotated["session"]["accessToken"])
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_unknown_refresh_token(client: GraphQLHTTP) -> None:
    result = (await client.data(REFRESH, {"t": "nope"}))["refreshSession"]
    assert result["userErrors"] == [
        {
            "code": "INVALID_TOKEN",
            "message": "The token is invalid or has expired.",
            "field": ["input", "refreshToken"],
        }
    ]


async def test_log_out_revokes_the_session(client: GraphQLHTTP) -> None:
    signed = await sign_up(client)
    query = "mutation($t: String!) { logOut(input: {refreshToken: $t}) { success userErrors { code } } }"
    assert (await client.data(query, {"t": signed.refresh}))["logOut"] == {
        "success": True,
        "userErrors": [],
    }
    body = await client.post("{ me { id } }", token=signed.access)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    again = (await client.data(query, {"t": signed.refresh}))["logOut"]
    assert again == {"success": False, "userErrors": [{"code": "INVALID_TOKEN"}]}


async def test_a_remembered_viewer_is_forgotten_the_moment_its_session_ends(
    client: GraphQLHTTP,
) -> None:
    # The first request remembers the viewer (no session query on the next ones); ending the
    # session in this process forgets it before the answer, so the very next request fails.
    signed = await sign_up(client)
    assert (await client.post("{ me { email } }", token=signed.access))["data"]["me"] == {
        "email": signed.email
    }
    query = "mutation($t: String!) { logOut(input: {refreshToken: $t}) { success } }"
    assert (await client.data(query, {"t": signed.refresh}))["logOut"] == {"success": True}
    body = await client.post("{ me { email } }", token=signed.access)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


CHANGE = """mutation($c: String!, $n: String!) {
  changePassword(input: {currentPassword: $c, newPassword: $n}) { success userErrors { code field } }
}"""


async def test_change_password_keeps_this_session_and_ends_the_others(client: GraphQLHTTP) -> None:
    signed = await sign_up(client)
    other = (await client.data(LOG_IN, {"input": {"email": signed.email, "password": PASSWORD}}))[
        "logIn"
    ]
    result = await client.data(
        CHANGE, {"c": PASSWORD, "n": "a brand new passphrase"}, token=signed.access
    )
    assert result["changePassword"] == {"success": True, "userErrors": []}
    assert (await client.data("{ me { id } }", token=signed.access))["me"]["id"] == signed.id
    body = await client.post("{ me { id } }", token=other["session"]["accessToken"])
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    old = (await client.data(LOG_IN, {"input": {"email": signed.email, "password": PASSWORD}}))[
        "logIn"
    ]
    assert old["userErrors"][0]["code"] == "INVALID_CREDENTIALS"


async def test_change_password_errors(client: GraphQLHTTP) -> None:
    signed = await sign_up(client)
    wrong = await client.data(
        CHANGE, {"c": "wrong one!!", "n": "a brand new passphrase"}, token=signed.access
    )
    assert wrong["changePassword"]["userErrors"] == [
        {"code": "INVALID_CREDENTIALS", "field": ["input", "currentPassword"]}
    ]
    weak = await client.data(CHANGE, {"c": PASSWORD, "n": "123456789012"}, token=signed.access)
    assert weak["changePassword"]["userErrors"] == [
        {"code": "WEAK_PASSWORD", "field": ["input", "newPassword"]}
    ]
    anonymous = await client.post(CHANGE, {"c": PASSWORD, "n": "a brand new passphrase"})
    assert anonymous["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def _forge(signed_sub: str, **changes: object) -> str:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "stacklo",
        "aud": "stacklo-api",
        "sub": signed_sub,
        "sid": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 600,
        "jti": "x",
    }
    claims.update(changes)
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


BAD_TOKENS = {
    "alg-none": lambda t: _b64({"alg": "none", "typ": "JWT"}) + "." + t.split(".")[1] + ".",
    "wrong-key": lambda t: jwt.encode(
        jwt.decode(t, options={"verify_signature": False}), "w" * 48, algorithm="HS256"
    ),
    "wrong-aud": lambda t: jwt.encode(
        {**jwt.decode(t, options={"verify_signature": False}), "aud": "x"},
        JWT_SECRET,
        algorithm="HS256",
    ),
    "wrong-iss": lambda t: jwt.encode(
        {**jwt.decode(t, options={"verify_signature": False}), "iss": "x"},
        JWT_SECRET,
        algorithm="HS256",
    ),
    "expired": lambda t: jwt.encode(
        {**jwt.decode(t, options={"verify_signature": False}), "exp": int(time.time()) - 5},
        JWT_SECRET,
        algorithm="HS256",
    ),
    "tampered": lambda t: (
        t.split(".")[0]
        + "."
        + _b64({**jwt.decode(t, options={"verify_signature": False}), "sub": str(uuid.uuid4())})
        + "."
        + t.split(".")[2]
    ),
    "unknown-session": lambda t: _forge(jwt.decode(t, options={"verify_signature": False})["sub"]),
    "garbage": lambda t: "not.a.jwt",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_bad_tokens_are_unauthenticated(client: GraphQLHTTP, kind: str) -> None:
    signed = await sign_up(client)
    bad = BAD_TOKENS[kind](signed.access)
    body = await client.post("{ me { id } }", token=bad)
    assert body["data"] == {"me": None}
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    # The genuine token still works: nothing above damaged the session.
    assert (await client.data("{ me { id } }", token=signed.access))["me"]["id"] == signed.id
