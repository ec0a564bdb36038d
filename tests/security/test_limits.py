"""HIGH 2: no operation may cost more than the limits, over HTTP or a socket.

Refused before validation and execution with QUERY_TOO_COMPLEX naming the limit, what was
measured and the maximum; fragments cannot multiply past the checks; one authentication
mutation per request. (How fast a refusal is: bench/operation_limits.py prints it.)
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Server
from tests.helpers import GraphQLHTTP, sign_up
from tests.security.conftest import Cluster, new_address
from tests.security.helpers import answer, close_code, open_socket, operate, raw

HEAVY = "me { wallets { entries(first: 100) { edges { node { amount { amount } transaction { reference } } } } } }"
# The audit's query: 1,000 aliases of HEAVY (93 KB).
ALIAS_BOMB = "{ " + " ".join(f"a{i}: {HEAVY}" for i in range(1000)) + " }"
CHEAP_BOMB = "{ " + " ".join(f"c{i}: __typename" for i in range(50_000)) + " }"
COST_BOMB = "{ " + " ".join(f"a{i}: {HEAVY}" for i in range(3)) + " }"
TOKEN_BOMB = "{ " + "a " * 2500 + "}"  # under the length limit, over the token limit
DEPTH_BOMB = (
    "{ me { wallets { entries { edges { node { transaction { entries { transaction "
    "{ entries { transaction { id } } } } } } } } } } }"
)
# Each fragment spreads the next twice: 2^30 aliased fields from a 1 KB document.
FRAGMENT_BOMB = (
    "query { me { ...F0 } }\n"
    + "\n".join(f"fragment F{i} on User {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30))
    + "\nfragment F30 on User { x: email }"
)
# A small fragment that is costly where it is spread: inside a page of 100, twice nested.
FRAGMENT_COST_BOMB = """query { me { transactions(first: 100) { edges { node { ...T } } } } }
fragment T on Transaction { entries { transaction { ...U } } }
fragment U on Transaction { entries { transaction { statusHistory { status } } } }"""
TWO_LOG_INS = """mutation {
  a: logIn(input: {email: "a@example.com", password: "x"}) { session { accessToken } }
  b: logIn(input: {email: "b@example.com", password: "y"}) { session { accessToken } }
}"""
LOG_INS_IN_A_FRAGMENT = """mutation { ...Both }
fragment Both on Mutation {
  logIn(input: {email: "a@example.com", password: "x"}) { session { accessToken } }
  signUp(input: {email: "b@example.com", password: "yyyyyyyyyyyy", fullName: "B"}) { user { id } }
}"""

# graphql-cop's field duplication and directive overloading.
FIELD_DUPLICATION = "query cop {" + " __typename\n" * 500 + "}"
DIRECTIVE_OVERLOADING = "query cop { __typename @aa@aa@aa@aa@aa@aa@aa@aa@aa@aa }"

CASES = [
    (ALIAS_BOMB, "characters"),
    (FIELD_DUPLICATION, "fields"),
    (DIRECTIVE_OVERLOADING, "directives"),
    (COST_BOMB, "cost"),
    (TOKEN_BOMB, "tokens"),
    (DEPTH_BOMB, "depth"),
    (FRAGMENT_BOMB, "aliases"),
    (FRAGMENT_COST_BOMB, "cost"),
    (TWO_LOG_INS, "authenticationMutations"),
    (LOG_INS_IN_A_FRAGMENT, "authenticationMutations"),
]


def _refusal(errors: list[dict[str, Any]], limit: str) -> None:
    assert len(errors) == 1, errors
    extensions = errors[0]["extensions"]
    assert extensions["code"] == "QUERY_TOO_COMPLEX"
    assert extensions["limit"] == limit
    assert extensions["measured"] > extensions["maximum"]
    assert str(extensions["maximum"]) in errors[0]["message"]


@pytest.mark.parametrize(
    ("query", "limit"), CASES, ids=[c[1] + str(n) for n, c in enumerate(CASES)]
)
async def test_over_http_the_operation_is_refused_before_it_runs(
    production: Cluster, query: str, limit: str
) -> None:
    client = GraphQLHTTP(production.a.base_url, client_address=new_address())
    user = await sign_up(client)
    response = await raw(client, query, token=user.access)
    body = response.json()
    assert body.get("data") is None
    _refusal(body["errors"], limit)
    await client.aclose()


@pytest.mark.parametrize(
    ("query", "limit"), CASES, ids=[c[1] + str(n) for n, c in enumerate(CASES)]
)
async def test_over_a_socket_the_operation_is_refused_and_the_socket_serves_on(
    production: Cluster, query: str, limit: str
) -> None:
    client = GraphQLHTTP(production.a.base_url, client_address=new_address())
    user = await sign_up(client)
    ws = await open_socket(production.a.ws_url, user.access)
    await operate(ws, "bomb", query)
    refused = await answer(ws)
    assert refused["id"] == "bomb" and refused["type"] == "error", refused
    _refusal(refused["payload"], limit)
    await operate(ws, "ok", "{ me { email } }")
    assert (await answer(ws))["payload"]["data"]["me"]["email"] == user.email
    await ws.close()
    await client.aclose()


async def test_fifty_thousand_cheap_aliases_are_a_body_too_large(production: Cluster) -> None:
    """1 MB of aliases: past the body limit over HTTP (413), past the message limit on a
    socket (closed 1009, as RFC 6455 says for a message too big)."""
    client = GraphQLHTTP(production.a.base_url, client_address=new_address())
    response = await raw(client, CHEAP_BOMB)
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    ws = await open_socket(production.a.ws_url, None)
    await operate(ws, "bomb", CHEAP_BOMB)
    assert await close_code(ws) == 1009
    await client.aclose()


async def test_a_normal_query_is_answered_while_bombs_are_refused(production: Cluster) -> None:
    client = GraphQLHTTP(production.a.base_url, client_address=new_address())
    user = await sign_up(client)
    bombs = [raw(client, q, token=user.access) for q, _ in CASES for _ in range(3)]
    normal = client.data("{ me { email wallets { balance { amount } } } }", token=user.access)
    *refused, answered = await asyncio.gather(*bombs, normal)
    assert all(r.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX" for r in refused)
    assert answered["me"]["email"] == user.email
    await client.aclose()


async def test_a_circular_introspection_query_is_refused_in_validation(tight: Server) -> None:
    """Introspection is public on this (test-mode) server, but not without end."""
    client = GraphQLHTTP(tight.base_url, client_address=new_address())
    circular = "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
    body = (await raw(client, circular)).json()
    assert body.get("data") is None
    assert body["errors"][0]["message"] == "Maximum introspection depth exceeded"
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    await client.aclose()


async def test_queries_within_the_limits_run(production: Cluster) -> None:
    """The usual screens fit: a statement page, the transactions list, introspection-free."""
    client = GraphQLHTTP(production.a.base_url, client_address=new_address())
    user = await sign_up(client)
    for query in (
        "{ me { wallets { id balance { amount } entries(first: 20) { edges { node { amount { amount } transaction { reference status } } } } } } }",
        "{ me { transactions(first: 100) { edges { node { id reference amount { amount } counterparty { displayName } entries { amount { amount } } statusHistory { status } } } } } }",
    ):
        assert "me" in await client.data(query, token=user.access)
    await client.aclose()
