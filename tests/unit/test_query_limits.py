"""The static measure of an operation (stacklo/schema/limits.py): cost model, fragments
measured once, bounds passed early."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse

from stacklo.api import schema
from stacklo.schema.limits import BadArgument, Bounds, Over, Report, measure, selected_operation

WIDE = Bounds(depth=100, aliases=10**9, cost=10**12, default_page=20, max_page=100)


def report(query: str, variables: dict[str, Any] | None = None, bounds: Bounds = WIDE) -> Report:
    document = parse(query)
    operation = selected_operation(document, None)
    assert operation is not None
    return measure(schema._schema, document, operation, variables, bounds)


def over(query: str, bounds: Bounds, variables: dict[str, Any] | None = None) -> Over:
    with pytest.raises(Over) as raised:
        report(query, variables, bounds)
    return raised.value


def test_scalars_are_free_objects_cost_one() -> None:
    assert report("{ me { email fullName } }") == Report(2, 0, 1, 0, False, fields=3)
    assert report("{ me { wallets { balance { amount } } } }").cost == 1 + 7 * (1 + 1)


def test_a_connection_multiplies_its_edges_by_first() -> None:
    query = "query($n: Int) { me { transactions(first: $n) { edges { node { reference } } } } }"
    # me 1 + connection 1 + n x (edge 1 + node 1)
    assert report(query, {"n": 10}).cost == 2 + 10 * 2
    assert report(query).cost == 2 + 20 * 2  # the default page
    for bad in (500, -1):
        with pytest.raises(BadArgument):  # refused before execution, not capped
            report(query, {"n": bad})
    literal = "{ me { transactions(first: 5) { edges { node { reference } } } } }"
    assert report(literal).cost == 2 + 5 * 2


def test_a_fragment_counts_each_time_it_is_spread() -> None:
    once = "{ me { ...W } } fragment W on User { wallets { id } }"
    twice = "{ a: me { ...W } b: me { ...W } } fragment W on User { wallets { id } }"
    assert report(twice).cost == 2 * report(once).cost
    assert report(twice).aliases == 2


def test_aliases_inside_fragments_count_per_spread() -> None:
    query = (
        "{ me { ...F ...G } } fragment F on User { ...A ...A } fragment G on User { ...A } "
        "fragment A on User { x: email y: email }"
    )
    assert report(query).aliases == 6


def test_an_exponential_fragment_nest_is_refused_early() -> None:
    query = (
        "query { me { ...F0 } }\n"
        + "\n".join(f"fragment F{i} on User {{ ...F{i + 1} ...F{i + 1} }}" for i in range(60))
        + "\nfragment F60 on User { x: email }"
    )
    refused = over(query, Bounds(10, 30, 1000, 20, 100))
    assert refused.limit == "aliases" and 30 < refused.measured <= 64


def test_depth_counts_through_fragments() -> None:
    query = "{ me { ...W } } fragment W on User { wallets { entries { edges { node { id } } } } }"
    assert report(query).depth == 6
    assert over(query, Bounds(5, 30, 1000, 20, 100)).limit == "depth"


def test_cyclic_fragments_do_not_hang_validation_reports_them() -> None:
    assert (
        report("{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A }").cost == 1
    )


def test_introspection_is_flagged_and_free() -> None:
    measured = report("{ __schema { types { name fields { name } } } }")
    assert measured.introspection and measured.cost == 0 and measured.depth == 0


def test_authentication_mutations_are_counted_through_fragments() -> None:
    one = 'mutation { logIn(input: {email: "a", password: "b"}) { user { id } } }'
    assert report(one).auth_mutations == 1
    two = (
        'mutation { ...M refreshSession(input: {refreshToken: "x"}) { user { id } } } '
        'fragment M on Mutation { logIn(input: {email: "a", password: "b"}) { user { id } } }'
    )
    assert over(two, WIDE).limit == "authenticationMutations"


def test_declared_list_sizes_are_used() -> None:
    # Transaction.entries declares 5, statusHistory 4; Query.currencies the 7 currencies.
    assert report("{ currencies { code } }").cost == 7
    tx = "{ me { transactions(first: 1) { edges { node { entries { id } statusHistory { status } } } } } }"
    assert report(tx).cost == 2 + 1 * (1 + 1 + 5 + 4)


def test_the_cost_bound_stops_the_walk() -> None:
    query = "{ " + " ".join(f"a{i}: me {{ wallets {{ id }} }}" for i in range(1000)) + " }"
    refused = over(query, Bounds(10, 10_000, 100, 20, 100))
    assert refused.limit == "cost" and 100 < refused.measured < 200


def test_fields_count_through_fragments_and_directives_per_place_are_bounded() -> None:
    query = "{ me { ...F ...F } } fragment F on User { email fullName }"
    assert report(query).fields == 1 + 2 * 2
    bounds = Bounds(10, 30, 1000, 20, 100, fields=4)
    assert over(query, bounds).limit == "fields"
    assert over("{ __typename @a @b @c @d }", WIDE).limit == "directives"
