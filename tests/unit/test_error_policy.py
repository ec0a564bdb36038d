"""The error policy: codes for expected failures, a masked and counted answer for the rest."""

import asyncio
import socket
from collections.abc import AsyncIterator

import asyncpg
import strawberry
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from strawberry.extensions import SchemaExtension

from stacklo.data.db import create_engine
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


# ---------------------------------------------------------------- the database out of reach


def _unavailable_count() -> float:
    return REGISTRY.get_sample_value("stacklo_unavailable_answers_total") or 0.0


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends: nobody listens


async def _select_from_a_stopped_database() -> None:
    """What the app meets while PostgreSQL is down: the driver's connect refused."""
    engine = create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/x")
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


@strawberry.type
class DatabaseQuery:
    @strawberry.field
    async def refused(self) -> int:
        await _select_from_a_stopped_database()
        return 1

    @strawberry.field
    def dropped(self) -> int:
        """A pooled connection the server closed mid-statement, as SQLAlchemy reports it."""
        cause = asyncpg.exceptions.ConnectionDoesNotExistError(
            "connection was closed in the middle of operation"
        )
        raise DBAPIError("SELECT 1", {}, cause, connection_invalidated=True) from cause

    @strawberry.field
    def starting_up(self) -> int:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    @strawberry.field
    def local_file(self) -> int:
        """An OSError that is not the database's: still unexpected."""
        raise FileNotFoundError("/srv/secret/path")


class BrokenHook(SchemaExtension):
    """An extension that fails before execution, as the cost budget does when it looks the
    viewer up and the database is away."""

    async def on_validate(self) -> AsyncIterator[None]:
        query = self.execution_context.query or ""
        if "unreachable" in query:
            await _select_from_a_stopped_database()
        if "broken" in query:
            raise RuntimeError("internal detail: table xyz")
        yield


@strawberry.type
class HookQuery:
    @strawberry.field
    def unreachable(self) -> int:
        return 1

    @strawberry.field
    def broken(self) -> int:
        return 1


def test_the_database_out_of_reach_is_retryable_and_not_unexpected() -> None:
    db_schema = strawberry.Schema(query=DatabaseQuery, extensions=[ErrorPolicy])
    for field in ("refused", "dropped", "startingUp"):
        before, unexpected = _unavailable_count(), _count()
        result = asyncio.run(db_schema.execute(f"{{ {field} }}"))
        assert result.errors is not None, field
        error = result.errors[0]
        assert error.message.startswith("The service is briefly unavailable"), field
        assert error.extensions is not None
        assert error.extensions["code"] == "SERVICE_UNAVAILABLE", field
        assert error.extensions["retryAfter"] == 1
        assert "requestId" in error.extensions
        assert _unavailable_count() == before + 1
        assert _count() == unexpected


def test_an_os_error_that_is_not_the_database_stays_unexpected() -> None:
    db_schema = strawberry.Schema(query=DatabaseQuery, extensions=[ErrorPolicy])
    before = _count()
    result = asyncio.run(db_schema.execute("{ localFile }"))
    assert result.errors is not None
    assert result.errors[0].extensions is not None
    assert result.errors[0].extensions["code"] == "INTERNAL_SERVER_ERROR"
    assert "secret" not in str(result.errors[0].formatted)
    assert _count() == before + 1


def test_an_extension_failing_before_execution_is_coded_and_masked() -> None:
    """strawberry answers an exception from an extension's hook with its text, unmasked: the
    policy codes it like any other."""
    hook_schema = strawberry.Schema(query=HookQuery, extensions=[ErrorPolicy, BrokenHook])
    result = asyncio.run(hook_schema.execute("{ unreachable }"))
    assert result.errors is not None
    assert result.errors[0].extensions is not None
    assert result.errors[0].extensions["code"] == "SERVICE_UNAVAILABLE"
    assert "Connect call failed" not in str(result.errors[0].formatted)
    result = asyncio.run(hook_schema.execute("{ broken }"))
    assert result.errors is not None
    assert result.errors[0].message == "Internal server error"
    assert result.errors[0].extensions is not None
    assert result.errors[0].extensions["code"] == "INTERNAL_SERVER_ERROR"
    assert "xyz" not in str(result.errors[0].formatted)
