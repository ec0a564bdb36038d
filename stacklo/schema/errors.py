"""What a client sees of an error: a code always, nothing unexpected unmasked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import strawberry
from graphql import GraphQLError, GraphQLSyntaxError
from prometheus_client import Counter
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import MaskErrors
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError

from stacklo.data.db import unreachable
from stacklo.domain.errors import AccessError, DomainError, RateLimited
from stacklo.observability import log, report_unexpected, request_id_var
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
    suggestions are cut, since they would spell out the schema. The database out of reach
    (restarting, failing over) is SERVICE_UNAVAILABLE: retryable, logged in one line and counted
    apart from the unexpected. Anything else, also an exception escaping a subscription's
    generator or another extension's hook, is masked.
    """

    def __init__(self) -> None:
        super().__init__(error_message=MASKED)

    def on_operation(self) -> Iterator[None]:
        try:
            yield from super().on_operation()
        except _STRAWBERRY_OWN:
            raise
        except Exception as error:
            # An extension's hook failed (say the cost budget looking the viewer up while the
            # database restarts): strawberry would answer str(error), unmasked and uncoded.
            wrapped = GraphQLError(str(error), original_error=error)
            raise self._process_errors([wrapped])[0] from None

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        context = getattr(self.execution_context, "context", None)
        return masked(errors, getattr(context, "services", None))


# What strawberry raises on purpose for the HTTP layer to answer (400, 405).
_STRAWBERRY_OWN = (MissingQueryError, CannotGetOperationTypeError, InvalidOperationTypeError)


MASKED = "Internal server error"
UNAVAILABLE = (
    "The service is briefly unavailable; retry in a moment. A mutation retried with the same "
    "idempotencyKey takes effect at most once."
)
# Seconds a client should wait before retrying: a database restart or failover takes a few.
UNAVAILABLE_RETRY_AFTER = 1

UNAVAILABLE_ANSWERS = Counter(
    "stacklo_unavailable_answers_total",
    "Errors answered SERVICE_UNAVAILABLE because the database could not be reached.",
)


def unavailable(error: BaseException) -> dict[str, Any] | None:
    """The ``extensions`` of a SERVICE_UNAVAILABLE answer if ``error`` is the database out of
    reach (logged without a traceback and counted), else None. Also for routes outside
    GraphQL and for sockets."""
    if not unreachable(error):
        return None
    UNAVAILABLE_ANSWERS.inc()
    request_id = request_id_var.get()
    log.warning("service_unavailable", error=repr(error))
    return {
        "code": "SERVICE_UNAVAILABLE",
        "retryAfter": UNAVAILABLE_RETRY_AFTER,
        "requestId": request_id,
    }


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
    retry = unavailable(original)
    if retry is not None:
        return _coded(error, UNAVAILABLE, retry)
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
