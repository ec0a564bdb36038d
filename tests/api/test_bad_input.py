"""Nothing a client can send gets a 500: malformed bodies, bad types, hostile strings."""

import httpx
import pytest

from tests.conftest import Server
from tests.helpers import SIGN_UP, GraphQLHTTP, sign_up, unique_email


async def test_malformed_json_is_a_400_graphql_error(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for body, content_type in (
            ("{bad", "application/json"),
            ("[1,", "application/json"),
            ("", "application/json"),
        ):
            response = await http.post(
                "/graphql", content=body, headers={"content-type": content_type}
            )
            assert response.status_code == 400
            assert response.json()["errors"][0]["message"]
        unsupported = await http.post(
            "/graphql", content="x", headers={"content-type": "text/plain"}
        )
        assert unsupported.status_code in (400, 415)
        assert "errors" in unsupported.json()
        missing = await http.post("/graphql", json={"variables": {}})
        assert missing.status_code == 400 and "errors" in missing.json()


async def test_get_queries_work_and_get_mutations_do_not(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        ok = await http.get("/graphql", params={"query": "{ currencies { code } }"})
        assert ok.status_code == 200 and len(ok.json()["data"]["currencies"]) == 7
        mutation = await http.get(
            "/graphql",
            params={"query": 'mutation { logOut(input:{refreshToken:"x"}) { success } }'},
        )
        assert mutation.status_code in (400, 405) and "errors" in mutation.json()


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ me { nope } }", {}),
        ("{ currencies { code } ", {}),
        (
            "mutation($i: SignUpInput!) { signUp(input: $i) { userErrors { code } } }",
            {"i": {"email": 5}},
        ),
        (
            "mutation($i: SignUpInput!) { signUp(input: $i) { userErrors { code } } }",
            {
                "i": {
                    "email": "a@b.co",
                    "password": "x" * 12,
                    "fullName": "A",
                    "homeCurrency": "XYZ",
                }
            },
        ),
        (
            "mutation($i: SignUpInput!) { signUp(input: $i) { userErrors { code } } }",
            {"i": {"email": "a@b.co", "password": "x" * 12, "fullName": "A", "extra": 1}},
        ),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": {"x": 1}}),
        ('query { users(first: "ten") { edges { cursor } } }', {}),
    ],
)
async def test_validation_errors(
    client: GraphQLHTTP, query: str, variables: dict[str, object]
) -> None:
    body = await client.post(query, variables)
    assert body["errors"] and "Internal server error" not in str(body)
    assert body.get("data") is None


def _input(**overrides: object) -> dict[str, object]:
    return {
        "email": unique_email(),
        "password": "correct horse battery",
        "fullName": "Ada Obi",
        **overrides,
    }


@pytest.mark.parametrize(
    ("overrides", "code", "field"),
    [
        ({"email": "a" * 300 + "@example.com"}, "INVALID_INPUT", "email"),
        ({"email": "not-an-email"}, "INVALID_INPUT", "email"),
        ({"email": "ada\u0000@example.com"}, "INVALID_INPUT", "email"),
        ({"fullName": "x" * 5000}, "INVALID_INPUT", "fullName"),
        ({"fullName": "Ada\u0007Obi"}, "INVALID_INPUT", "fullName"),
        ({"fullName": "   "}, "INVALID_INPUT", "fullName"),
        ({"phoneNumber": "call me"}, "INVALID_INPUT", "phoneNumber"),
        ({"password": "short"}, "WEAK_PASSWORD", "password"),
        ({"password": "12345678901234"}, "WEAK_PASSWORD", "password"),
        ({"password": "y" * 100_000}, "INVALID_INPUT", "password"),
    ],
)
async def test_sign_up_rejects_bad_fields(
    client: GraphQLHTTP, overrides: dict[str, object], code: str, field: str
) -> None:
    result = (await client.data(SIGN_UP, {"input": _input(**overrides)}))["signUp"]
    assert result["session"] is None and result["user"] is None
    assert result["userErrors"][0]["code"] == code
    assert result["userErrors"][0]["field"] == ["input", field]


async def test_password_equal_to_email_is_weak(client: GraphQLHTTP) -> None:
    email = unique_email()
    result = (await client.data(SIGN_UP, {"input": _input(email=email, password=email)}))["signUp"]
    assert result["userErrors"][0]["code"] == "WEAK_PASSWORD"


async def test_email_and_phone_taken(client: GraphQLHTTP) -> None:
    first = await sign_up(client, phoneNumber="+447700900123")
    same_email = (await client.data(SIGN_UP, {"input": _input(email=first.email.upper())}))[
        "signUp"
    ]
    assert same_email["userErrors"][0]["code"] == "EMAIL_TAKEN"
    same_phone = (await client.data(SIGN_UP, {"input": _input(phoneNumber="+44 7700 900123")}))[
        "signUp"
    ]
    assert same_phone["userErrors"][0] == {
        "code": "INVALID_INPUT",
        "message": "This phone number is already registered.",
        "field": ["input", "phoneNumber"],
    }


async def test_huge_and_hostile_queries_do_not_500(server: Server) -> None:
    hostile = [
        "{ " + "me { id } " * 2000 + "}",
        "{ " + "__typename " * 5000 + "}",
        'query { node(id: "' + "A" * 10_000 + '") { id } }',
        "{ me { wallets { balance { amount } } } }" * 50,
    ]
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        for query in hostile:
            response = await http.post("/graphql", json={"query": query})
            assert response.status_code < 500, response.text[:300]


async def test_a_page_size_past_the_maximum_never_nulls_the_viewer(
    server: Server, client: GraphQLHTTP
) -> None:
    """first: 500 on me.transactions: the connection is non-null in the contract, so an error
    inside it would null `me` (reading as signed out). It is refused before anything runs,
    naming the field and the argument, with no data at all."""
    user = await sign_up(client)
    for query, variables in (
        ("{ me { email transactions(first: 500) { edges { node { id } } } } }", {}),
        (
            "query($n: Int) { me { email transactions(first: $n) { edges { node { id } } } } }",
            {"n": 500},
        ),
    ):
        body = await client.post(query, variables, token=user.access)
        assert body.get("data") is None, body
        [error] = body["errors"]
        assert error["extensions"] == {
            "code": "BAD_USER_INPUT",
            "field": "transactions",
            "argument": "first",
            "maximum": 100,
        }
        assert "first on transactions must be 0 to 100; got 500" in error["message"]
        assert error["locations"]
    fine = await client.data(
        "{ me { email transactions(first: 100) { edges { node { id } } } } }", token=user.access
    )
    assert fine["me"]["email"] == user.email


@pytest.mark.parametrize(
    ("connection", "cursor"),
    [
        ("transactions", "forged"),
        ("transactions", "MTIzfDQ1Ng"),  # well-formed base64, not a (time, id) pair
        ("wallets { entries", "YWJj"),  # one part, not a number
    ],
)
async def test_a_forged_cursor_never_nulls_the_viewer(
    client: GraphQLHTTP, connection: str, cursor: str
) -> None:
    user = await sign_up(client)
    closing = " }" if "{" in connection else ""
    query = (
        f"query($a: String) {{ me {{ email {connection}(after: $a) {{ edges {{ cursor }} }}"
        f"{closing} }} }}"
    )
    body = await client.post(query, {"a": cursor}, token=user.access)
    assert body.get("data") is None, body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["argument"] == "after"
    assert error["extensions"]["field"] == connection.split()[-1]


DECIMAL_INLINE = (
    'mutation { sendMoney(input: {fromWalletId: "W", to: {email: "x@y.co"}, amount: %s, '
    'idempotencyKey: "k"}) { transaction { id } } }'
)
DECIMAL_VARIABLE = (
    'mutation($a: Decimal!) { sendMoney(input: {fromWalletId: "W", to: {email: "x@y.co"}, '
    'amount: $a, idempotencyKey: "k"}) { transaction { id } } }'
)


@pytest.mark.parametrize("amount", ["12.5", "12", "-1.5"])
async def test_decimal_is_a_string_inline_and_as_a_variable_alike(
    client: GraphQLHTTP, amount: str
) -> None:
    """Anonymous on purpose: a Decimal that coerces reaches the resolver (UNAUTHENTICATED);
    one that does not is BAD_USER_INPUT before it, the same way in both forms."""
    as_number = [
        await client.post(DECIMAL_INLINE % amount),
        await client.post(DECIMAL_VARIABLE, {"a": float(amount) if "." in amount else int(amount)}),
    ]
    for body in as_number:
        [error] = body["errors"]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", body
        assert "Decimal values are strings" in error["message"]
    as_string = [
        await client.post(DECIMAL_INLINE % f'"{amount}"'),
        await client.post(DECIMAL_VARIABLE, {"a": amount}),
    ]
    for body in as_string:
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
