"""What a client sees of an error: a code always, nothing unexpected unmasked."""

from __future__ import annotations

import re
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from strawberry.extensions import MaskErrors

from stacklo.domain.errors import AccessError, DomainError, RateLimited
from stacklo.observability import report_unexpected
from stacklo.schema.limits import refusal

_SUGGESTION = re.compile(r"\s*Did you mean .*\?\s*$", re.DOTALL)
# A value the client sent (a variable, or a literal a scalar refused) rather than a document
# that does not fit the schema.
_BAD_VALUE = re.compile(r"^(Variable '\$|Expected value of type )|got invalid value")
_TOO_MANY_TOKENS = re.compile(r"more than (\d+) tokens")


class ErrorPolicy(MaskErrors):
    """Every error a client sees has an ``extensions.code``; anything unexpected is masked,
    logged and counted.

    Ours pass with their codes: AccessError (UNAUTHENTICATED/FORBIDDEN/RATE_LIMITED/...),
    DomainError in a query (e.g. INVALID_INPUT for first > 100), a GraphQLError a permission
    class or the operation limits raised. The client's own mistakes get GRAPHQL_PARSE_FAILED
    (QUERY_TOO_COMPLEX past the token limit), GRAPHQL_VALIDATION_FAILED or BAD_USER_INPUT (a
    variable that did not coerce); unless introspection is public, their "Did you mean"
    suggestions are cut, since they would spell out the schema. Anything else, also an
    exception escaping a subscription's generator, is masked.
    """

    def __init__(self) -> None:
        super().__init__(error_message=MASKED)

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        context = getattr(self.execution_context, "context", None)
        return masked(errors, getattr(context, "services", None))


MASKED = "Internal server error"


def masked(errors: list[GraphQLError], services: Any) -> list[GraphQLError]:
    """The policy applied to ``errors`` (``services``: the application's, None when there
    is no context): also for events a socket executes outside strawberry's pipeline."""
    settings = getattr(services, "settings", None)
    return [_one(e, settings) for e in errors]


def _one(error: GraphQLError, settings: Any) -> GraphQLError:
    original = error.original_error
    if isinstance(original, RateLimited) and original.retry_after is not None:
        return _coded(
            error, str(original), {"code": original.code, "retryAfter": original.retry_after}
        )
    if isinstance(original, AccessError):
        return _coded(error, str(original), {"code": original.code})
    if isinstance(original, DomainError):
        extensions: dict[str, Any] = {"code": original.code.value}
        if original.field:
            extensions["field"] = list(original.field)
        return _coded(error, original.message, extensions)
    if isinstance(original, GraphQLError):
        return _client(original, settings)
    if original is None:
        return _client(error, settings)
    if error.path is None and error.nodes:
        return _client(error, settings, "BAD_USER_INPUT")  # a variable that did not coerce
    request_id = report_unexpected(original)
    return _coded(error, MASKED, {"code": "INTERNAL_SERVER_ERROR", "requestId": request_id})


def _client(error: GraphQLError, settings: Any, code: str | None = None) -> GraphQLError:
    if error.extensions and "code" in error.extensions:
        return error
    if isinstance(error, GraphQLSyntaxError):
        tokens = _TOO_MANY_TOKENS.search(error.message)
        if tokens and settings is not None:
            limit = settings.max_query_tokens
            return refusal(
                "tokens", limit + 1, limit, f"The operation has more than {limit} tokens."
            )
        return _coded(error, error.message, {"code": "GRAPHQL_PARSE_FAILED"})
    message = error.message
    if settings is None or settings.introspection_policy != "public":
        message = _SUGGESTION.sub("", message)
    if code is None:
        code = "BAD_USER_INPUT" if _BAD_VALUE.search(message) else "GRAPHQL_VALIDATION_FAILED"
    return _coded(error, message, {"code": code})


def _coded(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions=extensions,
    )


class QuietSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: Any = None) -> None:
        # ErrorPolicy logs what matters (unexpected errors, with the request id); client
        # mistakes such as validation errors are not server log material.
        return None
