"""The error policy: codes for expected failures, a masked and counted answer for the rest."""

import strawberry
from prometheus_client import REGISTRY

from stacklo.domain.errors import DomainError, ErrorCode, Forbidden
from stacklo.schema.errors import ErrorPolicy


@strawberry.type
class Query:
    @strawberry.field
    def boom(self) -> int:
        raise RuntimeError("database password is hunter2")

    @strawberry.field
    def forbidden(self) -> int:
        raise Forbidden()

    @strawberry.field
    def invalid(self) -> int:
        raise DomainError(ErrorCode.INVALID_INPUT, "first must be between 0 and 100", ("first",))


schema = strawberry.Schema(query=Query, extensions=[ErrorPolicy])


def _count() -> float:
    return REGISTRY.get_sample_value("stacklo_unexpected_errors_total") or 0.0


def test_unexpected_errors_are_masked_logged_and_counted() -> None:
    before = _count()
    result = schema.execute_sync("{ boom }")
    assert result.errors is not None
    error = result.errors[0]
    assert error.message == "Internal server error"
    assert "hunter2" not in str(error.formatted)
    assert error.extensions is not None
    assert error.extensions["code"] == "INTERNAL_SERVER_ERROR"
    assert "requestId" in error.extensions
    assert _count() == before + 1


def test_access_and_domain_errors_keep_their_codes() -> None:
    result = schema.execute_sync("{ forbidden }")
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "FORBIDDEN"}
    result = schema.execute_sync("{ invalid }")
    assert result.errors is not None
    assert result.errors[0].message == "first must be between 0 and 100"
    assert result.errors[0].extensions == {"code": "INVALID_INPUT", "field": ["first"]}


def test_validation_errors_pass_through_unmasked() -> None:
    result = schema.execute_sync("{ nope }")
    assert result.errors is not None
    assert "nope" in result.errors[0].message


def test_errors_escaping_a_subscription_are_masked() -> None:
    import asyncio
    from collections.abc import AsyncGenerator

    @strawberry.type
    class Subscription:
        @strawberry.subscription
        async def broken(self) -> AsyncGenerator[int, None]:
            yield 1
            raise RuntimeError("internal detail: table xyz")

    sub_schema = strawberry.Schema(query=Query, subscription=Subscription, extensions=[ErrorPolicy])

    async def collect() -> list[object]:
        stream = await sub_schema.subscribe("subscription { broken }")
        return [r async for r in stream]  # type: ignore[union-attr]

    results = asyncio.run(collect())
    last = results[-1]
    assert last.errors[0].message == "Internal server error"  # type: ignore[attr-defined]
    assert "xyz" not in str(last.errors[0].formatted)  # type: ignore[attr-defined]
