"""What one operation may ask for, measured before it runs.

Checked in this order, cheapest first, all before GraphQL validation (whose work grows with the
document, quadratically for overlapping fields) and long before execution:

1. length and tokens: text past ``max_query_chars`` is refused unread, then tokens are counted
   with one regular-expression scan (``count_tokens``) before the parser runs (the parser
   itself stops past ``max_query_tokens`` too);
2. depth, aliases, fields, directives per field, static cost and authentication mutations:
   one pass over the operation that would run. Each named fragment is measured once per page
   size and its figures reused, so a fragment spread a thousand times counts a thousand times
   but is walked once, and nested spreads cannot multiply past the checks;
3. introspection (``__schema``, ``__type``): as ``STACKLO_INTROSPECTION`` says (public, staff
   only through casbin's ``schema introspect``, or off); its nesting is bounded in validation
   by graphql-core's ``MaxIntrospectionDepthRule`` (no circular introspection queries).

A refusal is a GraphQL error with ``extensions.code`` ``QUERY_TOO_COMPLEX`` naming the
``limit``, the ``measured`` figure and the ``maximum`` (``FORBIDDEN`` for introspection).

Cost model (static, from the document and its variables; in the spirit of Shopify's):

- a field returning a scalar or an enum costs 0; one returning an object costs 1;
- a list of objects costs its size times (1 + its selection): the size the field declares with
  ``cost(size=...)``, ``DEFAULT_LIST_SIZE`` otherwise;
- a connection (a field with a ``first`` argument whose type has ``edges``) costs 1 plus, for
  its ``edges``, ``first`` times (1 + the edge's selection); ``first`` is the argument or its
  variable, else the default page size; a ``first`` outside 0 to the maximum page size is
  refused here, before anything runs, as BAD_USER_INPUT naming the field, and so is an
  ``after`` the connection's declared decoder (``cursors(...)``) does not accept (the
  connections are non-null, so an error in the field itself would null its parent: ``me``
  would read as signed out);
- a field that does more work declares its own base with ``cost(points=...)``;
- introspection fields cost nothing here and do not count toward depth.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLOutputType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    is_composite_type,
    parse,
)
from graphql.validation import MaxIntrospectionDepthRule
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from stacklo.domain.errors import DomainError

DEFAULT_LIST_SIZE = 10
# Mutations that check a password or mint a session: one per request, so aliases cannot turn
# one request into many password guesses (the throttle counts requests).
AUTH_MUTATIONS = frozenset({"signUp", "logIn", "refreshSession", "changePassword"})
INTROSPECTION_FIELDS = frozenset({"__schema", "__type"})
_CAP = 10**15  # figures past this are refused anyway; capping keeps the arithmetic small
_COST_KEY = "stacklo.cost"
_CURSOR_KEY = "stacklo.cursors"
# Where OperationLimits leaves an operation's Report on its ExecutionContext (read by budget.py).
REPORT = "stacklo_report"


# GraphQL's lexical tokens as graphql-core counts them (comments are matched, not counted).
# One C-level scan: an order of magnitude cheaper than the parser reaching its token limit.
_TOKEN = re.compile(
    r"#[^\n\r]*"
    r'|"""(?:\\"""|[^"]|"(?!""))*"""'
    r'|"(?:\\.|[^"\\\n\r])*"'
    r"|\.\.\.|[!$&():=@\[\]{|}]"
    r"|[_A-Za-z][_0-9A-Za-z]*"
    r"|-?[0-9][0-9.eE+-]*"
)


def count_tokens(text: str) -> int:
    """Tokens in an operation's text, without parsing it."""
    return sum(1 for token in _TOKEN.findall(text) if not token.startswith("#"))


def cost(*, points: int | None = None, size: int | None = None) -> dict[str, object]:
    """Field metadata declaring its cost: ``strawberry.field(metadata=cost(size=7))``."""
    return {_COST_KEY: (points, size)}


def cursors(decode: Callable[[str], object]) -> dict[str, object]:
    """Connection metadata: how its ``after`` decodes (raising on a forged cursor), so a bad
    one is refused before execution instead of nulling the connection's parent."""
    return {_CURSOR_KEY: decode}


@dataclass(frozen=True, slots=True)
class Bounds:
    depth: int
    aliases: int
    cost: int
    default_page: int
    max_page: int
    fields: int = 10**9


@dataclass(frozen=True, slots=True)
class Report:
    depth: int
    aliases: int
    cost: int
    auth_mutations: int
    introspection: bool
    fields: int = 0
    # Root mutation fields that move money (their input takes an idempotencyKey).
    money_mutations: int = 0


# @include, @skip and one more: a field with more is an attempt to make validation echo an
# error per directive (graphql-cop's "directive overloading").
DIRECTIVES_PER_LOCATION = 3


class Over(Exception):
    """A limit was passed; ``measured`` is what was counted when the walk stopped (at least)."""

    def __init__(self, limit: str, measured: int, maximum: int):
        super().__init__(limit)
        self.limit = limit
        self.measured = measured
        self.maximum = maximum


class BadArgument(Exception):
    """A connection's page size outside 0..max_page, or an ``after`` that is not one of its
    cursors: refused before anything runs, because the contract's connections are non-null
    and a field error there would null their parent (``me`` would read as signed out)."""

    def __init__(self, node: FieldNode, argument: str, message: str, **extensions: object):
        super().__init__(message)
        self.node = node
        self.argument = argument
        self.extensions = extensions

    def error(self) -> GraphQLError:
        field = self.node.name.value
        return GraphQLError(
            f"{self.argument} on {field} {self}",
            nodes=[self.node],
            extensions={
                "code": "BAD_USER_INPUT",
                "field": field,
                "argument": self.argument,
                **self.extensions,
            },
        )


def selected_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is None:
        return operations[0] if len(operations) == 1 else None
    return next((o for o in operations if o.name and o.name.value == operation_name), None)


def measure(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation: OperationDefinitionNode,
    variables: Mapping[str, Any] | None,
    bounds: Bounds,
) -> Report:
    """Depth, aliases (through fragments), static cost and authentication mutations of
    ``operation``. Raises ``Over`` as soon as one passes its bound, so a huge document is
    refused after walking only as much of it as it took to pass."""
    root = schema.get_root_type(operation.operation)
    if root is None:
        return Report(0, 0, 0, 0, False)
    walker = _Walker(schema, document, variables or {}, bounds)
    depth, total = walker.selection(operation.selection_set, root, None, 1)
    auth = money = 0
    if operation.operation is OperationType.MUTATION:
        names = walker.root_fields(operation.selection_set, frozenset())
        auth = sum(name in AUTH_MUTATIONS for name in names)
        if auth > 1:
            raise Over("authenticationMutations", auth, 1)
        money = sum(_moves_money(root, name) for name in names)
    return Report(depth, walker.aliases, total, auth, walker.introspection, walker.fields, money)


@functools.lru_cache(maxsize=256)
def _moves_money(root: Any, name: str) -> bool:
    """Money-moving mutations are the ones that take an idempotency key (ARCHITECTURE)."""
    definition = root.fields.get(name)
    argument = definition.args.get("input") if definition is not None else None
    return argument is not None and _has_field(get_named_type(argument.type), "idempotencyKey")


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        variables: Mapping[str, Any],
        bounds: Bounds,
    ):
        self.schema = schema
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.variables = variables
        self.bounds = bounds
        self.aliases = 0
        self.fields = 0
        self.introspection = False
        # fragment, page size -> (its own depth, cost, aliases, fields)
        self.memo: dict[tuple[str, int | None], tuple[int, int, int, int]] = {}
        self.visiting: set[str] = set()

    def selection(
        self, selection_set: SelectionSetNode, parent: Any, page: int | None, level: int
    ) -> tuple[int, int]:
        """(depth, cost) of a selection whose fields sit at ``level``."""
        depth = 0
        total = 0
        bounds = self.bounds
        for node in selection_set.selections:
            if node.directives and len(node.directives) > DIRECTIVES_PER_LOCATION:
                raise Over("directives", len(node.directives), DIRECTIVES_PER_LOCATION)
            if isinstance(node, FieldNode):
                d, c = self.field(node, parent, page, level)
            elif isinstance(node, InlineFragmentNode):
                condition = node.type_condition
                on = self._type(condition.name.value, parent) if condition else parent
                d, c = self.selection(node.selection_set, on, page, level)
            elif isinstance(node, FragmentSpreadNode):
                d, c = self.spread(node.name.value, parent, page, level)
            else:  # pragma: no cover - the grammar has no other selection
                continue
            depth = max(depth, d)
            total = min(total + c, _CAP)
            if total > bounds.cost:
                raise Over("cost", total, bounds.cost)
        return depth, total

    def spread(self, name: str, parent: Any, page: int | None, level: int) -> tuple[int, int]:
        key = (name, page)
        found = self.memo.get(key)
        if found is None:
            fragment = self.fragments.get(name)
            if fragment is None or name in self.visiting:
                return 0, 0  # unknown or cyclic: validation reports it
            self.visiting.add(name)
            aliases, fields = self.aliases, self.fields
            try:
                on = self._type(fragment.type_condition.name.value, parent)
                own_depth, own_cost = self.selection(fragment.selection_set, on, page, 1)
            finally:
                self.visiting.discard(name)
            found = (own_depth, own_cost, self.aliases - aliases, self.fields - fields)
            self.memo[key] = found
        else:
            self._alias(found[2])
            self._field(found[3])
        own_depth, own_cost, _, _ = found
        depth = level - 1 + own_depth if own_depth else 0
        if depth > self.bounds.depth:
            raise Over("depth", depth, self.bounds.depth)
        return depth, own_cost

    def field(self, node: FieldNode, parent: Any, page: int | None, level: int) -> tuple[int, int]:
        name = node.name.value
        self._field(1)
        if name in INTROSPECTION_FIELDS:
            self.introspection = True
            return 0, 0
        if level > self.bounds.depth:
            raise Over("depth", level, self.bounds.depth)
        if node.alias is not None and node.alias.value != name:
            self._alias(1)
        info = _field_info(parent, name)
        if info is None:
            return level, 0  # unknown (or __typename): validation decides
        target, is_object, is_list, points, size, connection, decode = info
        child_page = self._first(node) if connection else None
        if decode is not None:
            self._after(node, decode)
        depth, below = level, 0
        if node.selection_set is not None:
            depth, below = self.selection(node.selection_set, target, child_page, level + 1)
            depth = max(depth, level)
        one = min((points if points is not None else int(is_object)) + below, _CAP)
        if is_list and is_object:
            if size is not None:
                count = size
            elif name == "edges" and page is not None:
                count = page  # a connection's page: its `first`
            else:
                count = DEFAULT_LIST_SIZE
            one = min(count * one, _CAP)
        if one > self.bounds.cost:
            raise Over("cost", one, self.bounds.cost)
        return depth, one

    def root_fields(self, selection_set: SelectionSetNode, seen: frozenset[str]) -> list[str]:
        """The root fields' names, through fragments (the field limit bounds the walk)."""
        names: list[str] = []
        for node in selection_set.selections:
            if isinstance(node, FieldNode):
                names.append(node.name.value)
            elif isinstance(node, InlineFragmentNode):
                names += self.root_fields(node.selection_set, seen)
            elif isinstance(node, FragmentSpreadNode):
                fragment = self.fragments.get(node.name.value)
                if fragment is not None and node.name.value not in seen:
                    names += self.root_fields(fragment.selection_set, seen | {node.name.value})
        return names

    def _field(self, count: int) -> None:
        self.fields = min(self.fields + count, _CAP)
        if self.fields > self.bounds.fields:
            raise Over("fields", self.fields, self.bounds.fields)

    def _alias(self, count: int) -> None:
        self.aliases = min(self.aliases + count, _CAP)
        if self.aliases > self.bounds.aliases:
            raise Over("aliases", self.aliases, self.bounds.aliases)

    def _first(self, node: FieldNode) -> int:
        value: object = None
        for argument in node.arguments or ():
            if argument.name.value != "first":
                continue
            if isinstance(argument.value, IntValueNode):
                value = int(argument.value.value)
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
        if not isinstance(value, int) or isinstance(value, bool):
            return self.bounds.default_page
        if not 0 <= value <= self.bounds.max_page:
            raise BadArgument(
                node,
                "first",
                f"must be 0 to {self.bounds.max_page}; got {value}. Page with after and "
                "pageInfo.endCursor for more.",
                maximum=self.bounds.max_page,
            )
        return value

    def _after(self, node: FieldNode, decode: Callable[[str], object]) -> None:
        value: object = None
        for argument in node.arguments or ():
            if argument.name.value != "after":
                continue
            if isinstance(argument.value, StringValueNode):
                value = argument.value.value
            elif isinstance(argument.value, VariableNode):
                value = self.variables.get(argument.value.name.value)
        if isinstance(value, str):
            try:
                decode(value)
            except DomainError:
                raise BadArgument(
                    node, "after", "is not a cursor of this list: pass an endCursor or edge cursor"
                ) from None

    def _type(self, name: str, fallback: Any) -> Any:
        return self.schema.get_type(name) or fallback


_Info = tuple[Any, bool, bool, int | None, int | None, bool, Callable[[str], object] | None]


@functools.lru_cache(maxsize=4096)
def _field_info(parent: Any, name: str) -> _Info | None:
    """What the cost model needs of a field, computed once per (type, field)."""
    fields = getattr(parent, "fields", None)
    definition = fields.get(name) if fields else None
    if definition is None:
        return None
    target = get_named_type(definition.type)
    strawberry_field = definition.extensions.get("strawberry-definition")
    metadata = getattr(strawberry_field, "metadata", None) or {}
    points, size = metadata.get(_COST_KEY, (None, None))
    connection = "first" in definition.args and _has_field(target, "edges")
    return (
        target,
        is_composite_type(target),
        _is_list(definition.type),
        points,
        size,
        connection,
        metadata.get(_CURSOR_KEY) if connection else None,
    )


def _is_list(kind: GraphQLOutputType) -> bool:
    while isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)


def _has_field(kind: Any, name: str) -> bool:
    fields = getattr(kind, "fields", None)
    return fields is not None and name in fields


class LimitsRefusal(GraphQLError):
    """An operation refused before it ran; ``extensions`` say which limit and by how much."""


def refusal(limit: str, measured: int, maximum: int, message: str | None = None) -> LimitsRefusal:
    """``measured`` is what was counted when the check stopped: at least that much."""
    return LimitsRefusal(
        message or f"The operation's {limit} is over {maximum} (at least {measured}).",
        extensions={
            "code": "QUERY_TOO_COMPLEX",
            "limit": limit,
            "measured": measured,
            "maximum": maximum,
        },
    )


_validate = functools.lru_cache(maxsize=1000)(validate_document)


@functools.lru_cache(maxsize=1000)
def _parse(query: str, max_tokens: int) -> DocumentNode | None:
    try:
        return parse(query, max_tokens=max_tokens)
    except GraphQLError:
        return None


class CachedParse(SchemaExtension):
    """Parses each distinct operation text once. A text that does not parse is left to
    strawberry, which parses it again where its error goes through the error policy (its
    own ParserCache raises from a point where the policy never sees the error, so the
    client got a syntax error without a code)."""

    def on_parse(self) -> Iterator[None]:
        ctx = self.execution_context
        if ctx.query is not None:
            ctx.graphql_document = _parse(ctx.query, ctx.parse_options.get("max_tokens") or 0)
        yield


class OperationLimits(SchemaExtension):
    """Bounds every operation (HTTP and WebSocket) before validation and execution, then runs
    the cached validation itself (it replaces strawberry's ValidationCache, which would run
    validation whatever was refused here)."""

    def on_operation(self) -> Iterator[None]:
        settings = self.execution_context.context.services.settings
        self.execution_context.parse_options["max_tokens"] = settings.max_query_tokens
        yield

    async def on_validate(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        context = ctx.context
        settings = context.services.settings
        document = ctx.graphql_document
        assert document is not None
        schema = ctx.schema._schema
        refused: GraphQLError | None = None
        operation = selected_operation(document, ctx.operation_name)
        if (
            operation is not None
            and operation.operation is OperationType.SUBSCRIPTION
            and getattr(context, "socket", None) is None
        ):
            refused = GraphQLError(
                "Subscriptions run over a WebSocket (graphql-transport-ws), not plain HTTP.",
                extensions={"code": "BAD_REQUEST"},
            )
        elif operation is not None:
            try:
                report = measure(schema, document, operation, ctx.variables, bounds(settings))
            except Over as over:
                refused = refusal(over.limit, over.measured, over.maximum)
            except BadArgument as bad:
                refused = bad.error()
            else:
                setattr(ctx, REPORT, report)
                if report.introspection:
                    refused = await _introspection_refused(context, settings.introspection_policy)
        if refused is not None:
            ctx.pre_execution_errors = [refused]
        else:
            rules = (*ctx.validation_rules, MaxIntrospectionDepthRule)
            ctx.pre_execution_errors = list(_validate(schema, document, rules))
        yield


def bounds(settings: Any) -> Bounds:
    return Bounds(
        depth=settings.max_query_depth,
        aliases=settings.max_query_aliases,
        cost=settings.max_query_cost,
        default_page=settings.default_page_size,
        max_page=settings.max_page_size,
        fields=settings.max_query_fields,
    )


async def _introspection_refused(context: Any, policy: str) -> GraphQLError | None:
    if policy == "public":
        return None
    if policy == "staff" and context.services.visibility.may(
        await context.viewer(), "schema", "introspect"
    ):
        return None
    return GraphQLError(
        "Schema introspection is not available to you.", extensions={"code": "FORBIDDEN"}
    )
