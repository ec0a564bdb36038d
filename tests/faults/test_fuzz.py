"""Operations generated from the served schema, for every root field, signed in and not.

hypothesis-graphql draws queries, mutations and subscriptions for each root field of the
schema the server introspects, with arguments drawn by our own strategies for its scalars:
``ID`` mixes the signed-in user's real global ids (wallets, transactions, quotes, checkouts,
plans, notifications...) with well-formed ids of nothing and garbage; ``Decimal`` mixes plain
amounts with everything the README says is refused; ``DateTime`` mixes offsets at the ends
of the calendar with garbage; ``String`` mixes real emails, references and cursors with any
text. Half the operations send their arguments as variables, the rest inline; some are
drawn one schema violation away from valid. They go to the session's API server over HTTP
(subscriptions over its WebSocket) as an anonymous caller, as a verified customer with
funded wallets, a quote, a merchant's checkouts and an installment plan to act on, and as an
ADMIN.

Every answer: never a 5xx, every error has ``extensions.code``, none is
``INTERNAL_SERVER_ERROR`` (an exception that was masked: a bug), no message shows a
traceback, SQL or a Python class; afterwards ``stacklo ledger verify`` passes.

``STACKLO_FUZZ_EXAMPLES`` (e.g. 5000) sets the operations drawn per caller and operation
class, shared evenly by the class's root fields (without it, a quick deterministic run for
``make test``); ``STACKLO_FUZZ_SEED`` draws another sequence than the default one. Each run
prints what it sent per caller and class and records its figures (tests/faults/report.py).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import json
import os
import random
import re
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, queries

# Which arguments an operation on a root field can get wrong (hypothesis-graphql's own list,
# pinned with it in requirements.lock).
from hypothesis_graphql._strategies.negative_sites import enumerate_violation_sites
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.api.test_checkout import PAY, REFUND, create, verified_merchant
from tests.api.test_fx import quote
from tests.api.test_installments import APPLY
from tests.conftest import Server
from tests.faults.report import record
from tests.helpers import (
    BANK,
    PASSWORD,
    GraphQLHTTP,
    SignedUp,
    admin_token,
    deposit,
    key,
    send,
    sign_up,
    verify_identity,
)

LONG = bool(os.environ.get("STACKLO_FUZZ_EXAMPLES"))
EXAMPLES = int(os.environ.get("STACKLO_FUZZ_EXAMPLES") or 0)
SEED = int(os.environ.get("STACKLO_FUZZ_SEED") or 0)
# The quick profile: enough for every root field several times per caller, about a minute.
QUICK = {"query": 54, "mutation": 120, "subscription": 24}
# A subscription that answers nothing this long is taken as running, then completed.
QUIET_SECONDS = 0.15

CALLERS = ("customer", "anonymous", "staff")
CLASSES = ("query", "mutation", "subscription")


def _profile(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        derandomize=not SEED,
        database=None,
        # Failures are collected, not raised: nothing to shrink against a stateful server.
        phases=(Phase.explicit, Phase.generate),
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
            HealthCheck.filter_too_much,
        ],
    )


# --------------------------------------------------------------------- what was seen


@dataclass
class Finding:
    caller: str
    kind: str
    document: str
    variables: dict[str, Any]
    status: int
    problem: str

    def signature(self) -> str:
        return f"{self.kind} {_root_fields(self.document)} {self.problem[:160]}"


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)  # by caller/class
    fields: Counter[str] = field(default_factory=Counter)  # by class.root field
    codes: Counter[str] = field(default_factory=Counter)  # GraphQL errors; (none) for none
    user_errors: Counter[str] = field(default_factory=Counter)  # (accepted) for none
    findings: dict[str, Finding] = field(default_factory=dict)
    server_errors: int = 0
    waited: float = 0.0  # seconds spent waiting for answers
    internal: int = 0
    unmasked: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, finding: Finding) -> None:
        known = self.findings.get(finding.signature())
        if known is None or len(finding.document) < len(known.document):
            self.findings[finding.signature()] = finding


TALLY = Tally()


def _root_fields(document: str) -> str:
    try:
        parsed = graphql.parse(document)
    except graphql.GraphQLError:
        return "?"
    names = [
        s.name.value
        for d in parsed.definitions
        if isinstance(d, graphql.OperationDefinitionNode)
        for s in d.selection_set.selections
        if isinstance(s, graphql.FieldNode)
    ]
    return ",".join(names) or "?"


# What only the server's insides would say: a traceback, SQL, a Python class or message.
LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|\b(sqlalchemy|asyncpg|psycopg|strawberry|pydantic|stacklo)\b"
    r"|\b(SELECT|INSERT|UPDATE|DELETE)\b.*\b(FROM|INTO|SET|WHERE)\b"
    r"|\b[A-Z][A-Za-z]*(Error|Exception)\b|<class |NoneType|object has no attribute"
    r"|unsupported operand|invalid literal for|codec can't|not JSON serializable"
    r"|InvalidOperation|decimal\.|uuid\.|datetime\.|Decimal\(|UUID\("
)
# Values the client sent, echoed in a coercion message: not the server's words.
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')


def check(
    caller: str, kind: str, document: str, variables: dict[str, Any], status: int, body: Any
) -> None:
    """Tally one answer and note what is wrong with it."""
    TALLY.requests[f"{caller}/{kind}"] += 1
    TALLY.fields[f"{kind}.{_root_fields(document)}"] += 1

    def found(problem: str) -> None:
        TALLY.add(Finding(caller, kind, document, variables, status, problem))

    if status >= 500:
        TALLY.server_errors += 1
        found(f"HTTP {status}: {str(body)[:300]}")
        return
    if not isinstance(body, dict):
        TALLY.unmasked += 1
        found(f"not a JSON object: {str(body)[:300]}")
        return
    _outcomes(body.get("data"))
    if not body.get("errors"):
        TALLY.codes["(none)"] += 1
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code") if isinstance(error, dict) else None
        TALLY.codes[str(code)] += 1
        message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
        if code is None:
            TALLY.unmasked += 1
            found(f"no extensions.code: {message[:300]}")
        elif code == "INTERNAL_SERVER_ERROR":
            TALLY.internal += 1
            found(f"INTERNAL_SERVER_ERROR at {error.get('path')}")
        elif LEAKS.search(QUOTED.sub('""', message)):
            TALLY.unmasked += 1
            found(f"{code} leaks: {message[:300]}")


def _outcomes(data: Any) -> None:
    """Count the business outcomes reached: each userErrors code, and payloads without."""
    if isinstance(data, dict):
        for name, item in data.items():
            if name == "userErrors" and isinstance(item, list):
                for user_error in item or [{"code": "(accepted)"}]:
                    TALLY.user_errors[str(user_error.get("code"))] += 1
            else:
                _outcomes(item)
    elif isinstance(data, list):
        for item in data:
            _outcomes(item)


# --------------------------------------------------------------------- the world to act on


@dataclass
class Caller:
    name: str
    token: str | None
    ids: list[str]
    strings: list[str]


@dataclass
class World:
    customer: SignedUp
    other: SignedUp
    callers: dict[str, Caller]


ME = """{ me { id wallets { id }
  transactions(first: 50) { edges { cursor node { id reference entries { id } } } }
  notifications(first: 20) { edges { cursor node { id } } }
  installmentPlans(first: 5) { edges { cursor node { id installments { id } } } }
  kycDocuments { id } merchant { id checkouts(first: 10) { edges { cursor node { id } } } } } }"""


def _harvest(value: Any, ids: set[str], strings: set[str]) -> None:
    """Every id, cursor and reference in an answer."""
    if isinstance(value, dict):
        for name, item in value.items():
            if isinstance(item, str) and name == "id":
                ids.add(item)
            elif isinstance(item, str) and name in ("cursor", "reference", "email"):
                strings.add(item)
            else:
                _harvest(item, ids, strings)
    elif isinstance(value, list):
        for item in value:
            _harvest(item, ids, strings)


async def _make_world(server: Server, admin_credentials: tuple[str, str]) -> World:
    client = GraphQLHTTP(server.base_url)
    try:
        admin = await admin_token(client, admin_credentials)
        customer = await sign_up(client, phoneNumber=f"+23480{uuid.uuid4().int % 10**8:08d}")
        await verify_identity(client, customer, admin)
        owner, merchant_id = await verified_merchant(client, admin)
        for _ in range(2):
            await deposit(client, customer, "400000")
        await deposit(client, owner, "50000")
        applied = await client.data(
            APPLY,
            {"i": {"monthlyIncome": "900000", "employmentStatus": "EMPLOYED"}},
            customer.access,
        )
        assert applied["applyForCredit"]["userErrors"] == [], applied
        wallet = customer.user["wallets"][0]["id"]
        checkouts = [
            (await create(client, owner, merchant_id, amount))["checkout"]["id"]
            for amount in ("20000", "1500", "700", "300")
        ]
        for checkout, method, product in (
            (checkouts[0], "INSTALLMENTS", "PAY_IN_4"),
            (checkouts[1], "WALLET", None),
        ):
            paid = await client.data(
                PAY,
                {
                    "i": {
                        "checkoutId": checkout,
                        "walletId": wallet,
                        "method": method,
                        "product": product,
                        "idempotencyKey": key(),
                    }
                },
                customer.access,
            )
            assert paid["payCheckout"]["userErrors"] == [], paid
        refunded = await client.data(
            REFUND,
            {
                "i": {
                    "checkoutId": checkouts[1],
                    "reason": "fuzz",
                    "idempotencyKey": key(),
                    "amount": "10",
                }
            },
            owner.access,
        )
        assert refunded["refundCheckout"]["userErrors"] == [], refunded
        sent = await send(client, customer, {"email": owner.email}, "125.50")
        assert sent["userErrors"] == [], sent
        made = await quote(client, customer, "NGN", "USD", sourceAmount="1000")
        assert made["userErrors"] == [], made

        ids: set[str] = {merchant_id, *checkouts, made["quote"]["id"]}
        strings: set[str] = {owner.email, customer.email, PASSWORD, BANK["bankCode"]}
        strings |= {BANK["accountNumber"], BANK["accountName"], "fuzz-key", "wallet.frozen"}
        for user in (customer, owner):
            _harvest(await client.data(ME, token=user.access), ids, strings)
        owner_ids: set[str] = set()
        _harvest(await client.data(ME, token=owner.access), owner_ids, set())
        callers = {
            "customer": Caller("customer", customer.access, sorted(ids), sorted(strings)),
            # An anonymous caller may still know ids: nothing may come of them.
            "anonymous": Caller("anonymous", None, sorted(ids), sorted(strings)),
            "staff": Caller("staff", admin, sorted(ids), sorted(strings)),
        }
        return World(customer, owner, callers)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
async def world(server: Server, admin_credentials: tuple[str, str]) -> World:
    return await _make_world(server, admin_credentials)


@pytest.fixture(scope="module")
def schema(server: Server) -> graphql.GraphQLSchema:
    """The schema as served, by introspection."""
    answer = httpx.post(
        server.base_url + "/graphql",
        json={"query": graphql.get_introspection_query(descriptions=False)},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    served = graphql.build_client_schema(answer.json()["data"])
    assert served.mutation_type is not None
    MUTATION_PAYLOADS_WITH_USER_ERRORS.update(
        name
        for name, root_field in served.mutation_type.fields.items()
        if "userErrors" in getattr(graphql.get_named_type(root_field.type), "fields", {})
    )
    return served


# --------------------------------------------------------------------- scalar strategies


def _string(value: str) -> graphql.ValueNode:
    return graphql.StringValueNode(value=value)


def _weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each ``weight`` times as likely as a strategy of weight 1."""
    return st.one_of([strategy for weight, strategy in choices for _ in range(weight)])


def _global_id(type_name: str, raw: str) -> str:
    return base64.b64encode(f"{type_name}:{raw}".encode()).decode()


NODE_TYPES = [
    "AuditEvent",
    "Checkout",
    "Installment",
    "InstallmentPlan",
    "KycDocument",
    "LedgerEntry",
    "Merchant",
    "Notification",
    "Quote",
    "Transaction",
    "User",
    "Wallet",
    "Nope",
]


def _ids(known: list[str]) -> st.SearchStrategy[graphql.ValueNode]:
    garbage = st.one_of(
        st.builds(_global_id, st.sampled_from(NODE_TYPES), st.uuids().map(str)),
        st.builds(_global_id, st.sampled_from(NODE_TYPES), st.text(max_size=40)),
        # A real id's payload under another type, and real ids cut or padded.
        st.builds(
            lambda real, other: _global_id(other, base64.b64decode(real).decode().split(":")[-1]),
            st.sampled_from(known),
            st.sampled_from(NODE_TYPES),
        ),
        st.sampled_from(known).map(lambda real: real[:-2]),
        st.sampled_from(known).map(lambda real: real + "=="),
        st.text(max_size=60),
        st.sampled_from(["", " ", "null", "0", "-1", "==", "%00", "Og==", "x" * 3000]),
    ).map(_string)
    numbers = st.integers(min_value=-(2**31), max_value=2**31 - 1).map(
        lambda n: graphql.IntValueNode(value=str(n))
    )
    return _weighted((4, st.sampled_from(known).map(_string)), (2, garbage), (1, numbers))


AMOUNTS = [
    "1.00", "0.01", "1", "10.000", "0", "0.00", "-1.00", "-0", "0.001", "125.50",
    "999999999999999.99", "1000000000000000", "99999999999999999999", "0.0099999999999999999999",
    "1e3", "1E-2", "NaN", "Infinity", "-Infinity", "sNaN", "00.5", ".5", "5.", "1_000", "+1",
    "\u0661\u0662", "", " 1", "1 ", "1.2.3", "0x10", "9" * 64, "9" * 65, "1." + "0" * 62,
]  # fmt: skip


def _decimals() -> st.SearchStrategy[graphql.ValueNode]:
    plain = st.builds(
        lambda sign, whole, frac: f"{sign}{whole}" + (f".{frac}" if frac else ""),
        st.sampled_from(["", "", "", "-"]),
        st.integers(min_value=0, max_value=10**20),
        st.one_of(st.none(), st.text("0123456789", min_size=1, max_size=20)),
    )
    small = st.decimals(min_value="0.01", max_value=5000, places=2).map(lambda d: f"{d:f}")
    numbers = st.one_of(  # refused: a number is never an amount
        st.integers().map(lambda n: graphql.IntValueNode(value=str(n))),
        st.floats(allow_nan=False, allow_infinity=False).map(
            lambda f: graphql.FloatValueNode(value=repr(f) if "." in repr(f) else f"{f}.0")
        ),
    )
    return _weighted(
        (5, small.map(_string)),
        (2, st.sampled_from(AMOUNTS).map(_string)),
        (1, plain.map(_string)),
        (1, st.text(max_size=70).map(_string)),
        (1, numbers),
    )


def _datetimes() -> st.SearchStrategy[graphql.ValueNode]:
    offset = st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
        lambda m: f"{'+' if m >= 0 else '-'}{abs(m) // 60:02d}:{abs(m) % 60:02d}"
    )
    moment = st.datetimes().map(lambda d: d.isoformat())
    return st.one_of(
        st.builds(lambda d, o: d + o, moment, offset | st.just("Z")),
        moment,  # no offset
        st.sampled_from(
            [
                "0001-01-01T00:00:00+14:00",
                "0001-01-01T00:00:00+23:59",
                "9999-12-31T23:59:59-23:59",
                "9999-12-31T23:59:59.999999-01:00",
                "2026-02-30T00:00:00Z",
                "2026-01-01",
                "2026-13-01T00:00:00Z",
                "now",
                "",
                "24:00",
                "2026-01-01T00:00:00+24:00",
            ]
        ),
        st.text(max_size=40),
    ).map(_string)


def _texts(known: list[str]) -> st.SearchStrategy[graphql.ValueNode]:
    hostile = [
        "", " ", "%", "_", "%_%", "' OR '1'='1", "'; DROP TABLE users; --", "\\", "\x00",
        "a\x00b", "\u202e", "\U0001f600", "\ufeff", "TXN-", "TXN-\x00", "x" * 5000, "NGN", "+234",
    ]  # fmt: skip
    return _weighted(
        (3, st.sampled_from(known or [""])),
        (1, st.sampled_from(hostile)),
        (2, st.text(max_size=40)),
        (1, st.text(alphabet=st.characters(codec="ascii"), max_size=300)),
    ).map(_string)


def _ints() -> st.SearchStrategy[graphql.ValueNode]:
    return st.one_of(
        st.integers(min_value=0, max_value=100),
        st.sampled_from([-1, 101, 2**31 - 1, -(2**31)]),
        st.integers(min_value=-(2**31), max_value=2**31 - 1),
    ).map(lambda n: graphql.IntValueNode(value=str(n)))


def scalars(caller: Caller) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    return {
        "ID": _ids(caller.ids),
        "String": _texts(caller.strings),
        "Int": _ints(),
        "Decimal": _decimals(),
        "DateTime": _datetimes(),
        "Date": _datetimes(),
        "JSON": _texts(caller.strings),
        # Files are the KYC tests' subject; here a string or null where a file should be.
        "Upload": st.one_of(st.just(graphql.NullValueNode()), _texts([])),
    }


# --------------------------------------------------------------------- documents


def lift_arguments(
    schema: graphql.GraphQLSchema, document: graphql.DocumentNode
) -> tuple[graphql.DocumentNode, dict[str, Any]]:
    """The same operation with every argument sent as a variable of the argument's type."""
    info = graphql.TypeInfo(schema)
    definitions: list[graphql.VariableDefinitionNode] = []
    values: dict[str, Any] = {}

    class Lift(graphql.Visitor):
        def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
            argument = info.get_argument()
            if argument is None or isinstance(node.value, graphql.VariableNode):
                return None
            name = f"v{len(definitions)}"
            variable = graphql.VariableNode(name=graphql.NameNode(value=name))
            definitions.append(
                graphql.VariableDefinitionNode(
                    variable=variable, type=graphql.parse_type(str(argument.type))
                )
            )
            values[name] = graphql.value_from_ast_untyped(node.value)
            return graphql.ArgumentNode(name=node.name, value=variable)

    lifted = graphql.visit(document, graphql.TypeInfoVisitor(info, Lift()))
    return _with_operation(lifted, variable_definitions=tuple(definitions)), values


# Which kind of object an id argument or input field names, by its name.
ID_FIELDS = {
    "walletId": "Wallet",
    "fromWalletId": "Wallet",
    "quoteId": "Quote",
    "checkoutId": "Checkout",
    "planId": "InstallmentPlan",
    "installmentId": "Installment",
    "merchantId": "Merchant",
    "userId": "User",
    "actorId": "User",
    "documentId": "KycDocument",
    "ids": "Notification",
}


def aim_ids(
    document: graphql.DocumentNode, by_type: dict[str, list[str]], chance: random.Random
) -> graphql.DocumentNode:
    """Most ids in arguments and input fields swapped for a real id of the kind the field
    names (the ID strategy alone cannot tell a walletId from a quoteId), so that operations
    get past NOT_FOUND to the rules behind it."""

    def aimed(name: str, value: graphql.ValueNode) -> graphql.ValueNode | None:
        ids = by_type.get(ID_FIELDS.get(name, ""))
        if not ids or chance.random() < 0.3:
            return None
        if isinstance(value, graphql.ListValueNode):
            return graphql.ListValueNode(
                values=tuple(_string(chance.choice(ids)) for _ in value.values)
            )
        return _string(chance.choice(ids))

    class Aim(graphql.Visitor):
        def enter_argument(self, node: graphql.ArgumentNode, *_: Any) -> Any:
            value = aimed(node.name.value, node.value)
            return None if value is None else dataclasses.replace(node, value=value)

        def enter_object_field(self, node: graphql.ObjectFieldNode, *_: Any) -> Any:
            value = aimed(node.name.value, node.value)
            return None if value is None else dataclasses.replace(node, value=value)

    aimed_document: graphql.DocumentNode = graphql.visit(document, Aim())
    return aimed_document


USER_ERRORS = graphql.parse("{ userErrors { code message field } }").definitions[0]


def with_user_errors(document: graphql.DocumentNode) -> graphql.DocumentNode:
    """Each payload that has userErrors selects them: what a mutation refused is counted."""
    operation = document.definitions[0]
    assert isinstance(operation, graphql.OperationDefinitionNode)
    assert isinstance(USER_ERRORS, graphql.OperationDefinitionNode)
    fields = []
    for selected in operation.selection_set.selections:
        inner = getattr(selected, "selection_set", None)
        if isinstance(selected, graphql.FieldNode) and inner is not None:
            names = {getattr(s, "name", None) and s.name.value for s in inner.selections}
            payload = str(selected.name.value)
            if "userErrors" not in names and payload in MUTATION_PAYLOADS_WITH_USER_ERRORS:
                inner = dataclasses.replace(
                    inner, selections=(*inner.selections, *USER_ERRORS.selection_set.selections)
                )
                selected = dataclasses.replace(selected, selection_set=inner)
        fields.append(selected)
    selection_set = dataclasses.replace(operation.selection_set, selections=tuple(fields))
    return _with_operation(document, selection_set=selection_set)


MUTATION_PAYLOADS_WITH_USER_ERRORS: set[str] = set()


def _with_operation(document: graphql.DocumentNode, **changes: Any) -> graphql.DocumentNode:
    """``document`` with its one operation changed (the nodes are frozen)."""
    operation = document.definitions[0]
    assert isinstance(operation, graphql.OperationDefinitionNode)
    return dataclasses.replace(document, definitions=(dataclasses.replace(operation, **changes),))


@functools.cache
def _rooted(schema: graphql.GraphQLSchema, kind: str) -> graphql.GraphQLSchema:
    """The schema with the root type of ``kind`` as its Query type: hypothesis-graphql draws
    queries (and mutations), so a subscription is drawn as a query on its root, and then
    sent as a subscription. One per kind, so hypothesis-graphql's caches hold."""
    root = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }[kind]
    assert root is not None
    return graphql.GraphQLSchema(query=root, types=list(schema.type_map.values()))


def operations(
    schema: graphql.GraphQLSchema, kind: str, root_field: str, caller: Caller
) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """Operations on one root field: valid ones, and some one violation away from valid."""
    target = _rooted(schema, kind)

    def drawn(mode: Mode) -> st.SearchStrategy[graphql.DocumentNode]:
        return queries(
            target,
            fields=[root_field],
            custom_scalars=scalars(caller),
            print_ast=lambda d: d,
            mode=mode,
        )

    by_type: dict[str, list[str]] = {}
    for known in caller.ids:
        by_type.setdefault(base64.b64decode(known).decode().split(":")[0], []).append(known)

    def finish(
        document: graphql.DocumentNode, as_variables: bool, chance: random.Random
    ) -> tuple[str, dict[str, Any]]:
        document = with_user_errors(aim_ids(document, by_type, chance))
        values: dict[str, Any] = {}
        if as_variables:
            try:
                lifted, values = lift_arguments(target, document)
                json.dumps(values, allow_nan=False)  # 1e999 is a literal, not JSON
                document = lifted
            except Exception:  # one violation away from valid, or no JSON: as it is, inline
                values = {}
        document = _with_operation(document, operation=graphql.OperationType(kind))
        return graphql.print_ast(document), values

    documents = [drawn(Mode.POSITIVE)] * 4
    assert target.query_type is not None
    sites = enumerate_violation_sites(target, target.query_type)
    if any(site.path[0].field_name == root_field for site in sites):
        documents.append(drawn(Mode.NEGATIVE))  # where there is an argument to get wrong
    return st.builds(finish, st.one_of(documents), st.booleans(), st.randoms(use_true_random=False))


# --------------------------------------------------------------------- senders


def send_http(
    http: httpx.Client, caller: Caller, kind: str, document: str, variables: dict[str, Any]
) -> None:
    headers = {"authorization": f"Bearer {caller.token}"} if caller.token else {}
    began = time.monotonic()
    answer = http.post(
        "/graphql", json={"query": document, "variables": variables}, headers=headers
    )
    try:
        body = answer.json()
    except ValueError:
        body = answer.text
    TALLY.waited += time.monotonic() - began
    check(caller.name, kind, document, variables, answer.status_code, body)


class Socket:
    """One graphql-transport-ws socket, reopened when the server closes it."""

    def __init__(self, url: str, caller: Caller) -> None:
        self.url, self.caller = url, caller
        self.socket: ClientConnection | None = None
        self.stack = contextlib.ExitStack()
        self.next_id = 0

    def open(self) -> ClientConnection:
        if self.socket is None:
            self.socket = self.stack.enter_context(
                connect(self.url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
            )
            payload = {"authorization": f"Bearer {self.caller.token}"} if self.caller.token else {}
            self.socket.send(json.dumps({"type": "connection_init", "payload": payload}))
            ack = json.loads(self.socket.recv(10))
            assert ack["type"] == "connection_ack", ack
        return self.socket

    def close(self) -> None:
        self.stack.close()
        self.socket = None

    def subscribe(self, document: str, variables: dict[str, Any]) -> None:
        socket = self.open()
        self.next_id += 1
        op = str(self.next_id)
        socket.send(
            json.dumps(
                {
                    "id": op,
                    "type": "subscribe",
                    "payload": {"query": document, "variables": variables},
                }
            )
        )
        try:
            deadline = time.monotonic() + QUIET_SECONDS
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    socket.send(json.dumps({"id": op, "type": "complete"}))
                    check(self.caller.name, "subscription", document, variables, 200, {})
                    return
                try:
                    message = json.loads(socket.recv(left))
                except TimeoutError:
                    continue
                if message.get("id") != op:
                    continue  # a late event of an earlier operation
                if message["type"] == "next":
                    socket.send(json.dumps({"id": op, "type": "complete"}))
                    check(
                        self.caller.name,
                        "subscription",
                        document,
                        variables,
                        200,
                        message["payload"],
                    )
                    return
                if message["type"] == "error":
                    errors = {"errors": message["payload"]}
                    check(self.caller.name, "subscription", document, variables, 200, errors)
                    return
                if message["type"] == "complete":
                    check(self.caller.name, "subscription", document, variables, 200, {})
                    return
        except ConnectionClosed as closed:
            self.close()
            code = closed.rcvd.code if closed.rcvd else 1006
            status = 500 if code == 1011 else 200
            body = (
                {}
                if code != 1011
                else {"closed": code, "reason": closed.rcvd and closed.rcvd.reason}
            )
            check(self.caller.name, "subscription", document, variables, status, body)


# --------------------------------------------------------------------- the runs


def _run(
    schema: graphql.GraphQLSchema,
    caller: Caller,
    kind: str,
    send: Callable[[str, dict[str, Any]], None],
) -> None:
    root = {
        "query": schema.query_type,
        "mutation": schema.mutation_type,
        "subscription": schema.subscription_type,
    }[kind]
    assert root is not None
    names = sorted(root.fields)
    total = EXAMPLES if LONG else QUICK[kind]
    for name in names:  # every root field gets its share
        drawn = operations(schema, kind, name, caller)

        @_profile(max(2, total // len(names)))
        @given(operation=drawn)
        def fuzz(operation: tuple[str, dict[str, Any]]) -> None:
            send(*operation)

        if SEED:
            fuzz = seed(SEED)(fuzz)
        fuzz()


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("kind", ["query", "mutation"])
def test_generated_operations_over_http(
    server: Server, world: World, schema: graphql.GraphQLSchema, kind: str, caller: str
) -> None:
    who = world.callers[caller]
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        _run(schema, who, kind, lambda doc, variables: send_http(http, who, kind, doc, variables))
    _fail_on_findings(caller, kind)


@pytest.mark.parametrize("caller", CALLERS)
def test_generated_subscriptions_over_the_socket(
    server: Server, world: World, schema: graphql.GraphQLSchema, caller: str
) -> None:
    who = world.callers[caller]
    socket = Socket(server.ws_url, who)
    try:
        _run(schema, who, "subscription", socket.subscribe)
    finally:
        socket.close()
    _fail_on_findings(caller, "subscription")


def _fail_on_findings(caller: str, kind: str) -> None:
    mine = [f for f in TALLY.findings.values() if f.caller == caller and f.kind == kind]
    sent = TALLY.requests[f"{caller}/{kind}"]
    print(
        f"fuzz {caller}/{kind}: {sent} operations, {len(mine)} findings, {TALLY.waited:.1f} s waited"
    )
    assert not mine, "\n\n".join(
        f"{f.problem}\nHTTP {f.status}\n{f.document}\nvariables: {json.dumps(f.variables)[:2000]}"
        for f in mine
    )


def test_every_root_field_was_exercised_and_the_ledger_balances(
    server: Server, schema: graphql.GraphQLSchema
) -> None:
    for kind, root in (
        ("query", schema.query_type),
        ("mutation", schema.mutation_type),
        ("subscription", schema.subscription_type),
    ):
        assert root is not None
        missing = [name for name in root.fields if not TALLY.fields[f"{kind}.{name}"]]
        assert not missing, f"{kind} fields never sent: {missing}"
    verified = subprocess.run(
        [sys.executable, "-m", "stacklo", "ledger", "verify"],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    by_class = {
        kind: sum(n for k, n in TALLY.requests.items() if k.endswith("/" + kind))
        for kind in CLASSES
    }
    for caller in CALLERS:
        print(
            f"fuzz {caller}: "
            + ", ".join(f"{k} {TALLY.requests[f'{caller}/{k}']}" for k in CLASSES)
        )
    print("fuzz error codes:", dict(TALLY.codes.most_common()))
    print("fuzz userErrors codes:", dict(TALLY.user_errors.most_common()))
    record(
        "fuzz",
        requests=sum(TALLY.requests.values()),
        by_class=by_class,
        by_caller={
            c: sum(n for k, n in TALLY.requests.items() if k.startswith(c + "/")) for c in CALLERS
        },
        operations=sum(
            len(r.fields)
            for r in (schema.query_type, schema.mutation_type, schema.subscription_type)
            if r
        ),
        examples_per_class=EXAMPLES if LONG else QUICK,
        server_errors=TALLY.server_errors,
        internal=TALLY.internal,
        unmasked=TALLY.unmasked,
        findings=len(TALLY.findings),
        codes=dict(TALLY.codes),
        user_errors=dict(TALLY.user_errors),
        seconds=round(time.monotonic() - TALLY.started, 1),
        ledger_verify=verified.returncode,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "ledger verify: OK" in verified.stdout
