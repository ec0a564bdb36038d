"""Turn a DomainError raised by a use case into the payload's ``userErrors``."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, Protocol, TypeVar

from stacklo.domain.errors import DomainError
from stacklo.domain.outcomes import Outcome
from stacklo.schema.common import UserError


class _Payload(Protocol):
    def __init__(self, *, user_errors: list[UserError]) -> None: ...


P = ParamSpec("P")
R = TypeVar("R")


def user_errors(
    payload: type[Any],
) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Return ``payload(user_errors=[...])`` instead of raising for business-rule failures."""

    def wrap(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(fn)
        async def run(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return await fn(*args, **kwargs)
            except DomainError as e:
                result: R = payload(user_errors=[UserError.of(e)])
                return result

        return run

    return wrap


def outcome_errors(outcome: Outcome) -> list[UserError]:
    """A money mutation that went through but was refused on the way (a payout the provider
    would not take) answers its transaction and why."""
    return [UserError.of(outcome.error)] if outcome.error else []
