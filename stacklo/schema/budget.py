"""Cost-based rate limiting, after Shopify's: what an operation may spend, and what it spent.

Every operation that passes its limits and validation takes its requested cost (the static
cost from ``limits.py``, known before it runs) from its caller's bucket: the signed-in user's,
or the client address's when anonymous. A mutation that moves money also takes one point per
such field from the caller's money bucket, which is far smaller. When a bucket holds too little
the operation does not run: ``RATE_LIMITED`` with ``extensions.retryAfter`` (HTTP: 429 and
``Retry-After``), and nothing is taken.

After it ran, its actual cost is what came back (one point per object in ``data``, the same
unit as the requested cost) and the difference is given back to the bucket. Every answer that
was measured carries ``extensions.cost``::

    {"requestedQueryCost": 12, "actualQueryCost": 7,
     "throttleStatus": {"maximumAvailable": 5000, "currentlyAvailable": 4995, "restoreRate": 100}}

(plus ``moneyThrottleStatus`` for a money-moving mutation) and, over HTTP, the buckets' IETF
``RateLimit-Policy`` and ``RateLimit`` header fields. A subscription takes its requested cost
once, when it starts, and keeps it (its actual cost is its requested cost); the events it then
delivers are free and each carries that same ``extensions.cost``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext
from strawberry.types.graphql import OperationType

from stacklo.auth.throttle import address_key
from stacklo.domain.budget import Budget, Taken
from stacklo.domain.errors import AccessError
from stacklo.schema.limits import REPORT, Report


@dataclass
class Spend:
    key: str
    requested: int
    cost: Taken
    money: Taken | None = None
    actual: int | None = None

    def extensions(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "requestedQueryCost": self.requested,
            "actualQueryCost": self.actual if self.actual is not None else 0,
            "throttleStatus": self.cost.status(),
        }
        if self.money is not None:
            answer["moneyThrottleStatus"] = self.money.status()
        return answer

    def refused(self) -> Taken | None:
        for taken in (self.money, self.cost):
            if taken is not None and not taken.allowed:
                return taken
        return None


async def _caller(context: Any) -> str:
    """Whose bucket: the signed-in user's, else the client address's."""
    with contextlib.suppress(AccessError):
        viewer = await context.viewer()
        if viewer is not None:
            return f"user:{viewer.user.id}"
    return f"address:{address_key(context.meta.ip_address)}"


def objects_in(data: object) -> int:
    """Objects in an answer's ``data`` (its root excluded): the actual cost."""
    count = 0
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            count += 1
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return max(count - 1, 0)


def rate_limited(taken: Taken) -> GraphQLError:
    what = "money-moving mutations" if taken.bucket.policy == "money" else "query cost"
    return GraphQLError(
        f"Rate limited: your {what} budget holds {int(taken.available)} of the "
        f"{int(taken.cost)} points this operation needs; retry in {taken.retry_after} s.",
        extensions={
            "code": "RATE_LIMITED",
            "retryAfter": taken.retry_after,
            "policy": taken.bucket.policy,
        },
    )


class CostBudget(SchemaExtension):
    """Charges the buckets after ``OperationLimits`` measured and validated the operation
    (it must come after it in the schema's extensions), refunds after execution, and reports."""

    spend: Spend | None = None

    async def on_validate(self) -> AsyncIterator[None]:
        ctx = self.execution_context
        report: Report | None = getattr(ctx, REPORT, None)
        if report is not None and not ctx.pre_execution_errors:
            self.spend = await _charge(ctx, report)
            refused = self.spend.refused()
            if refused is not None:
                ctx.pre_execution_errors = [rate_limited(refused)]
            elif ctx.operation_type is OperationType.SUBSCRIPTION:
                # Charged once, in full, when it starts; every event repeats that figure.
                self.spend.actual = report.cost
        yield

    async def on_execute(self) -> AsyncIterator[None]:
        yield
        spend = self.spend
        result = self.execution_context.result
        if spend is None or spend.refused() is not None or result is None:
            return
        spend.actual = objects_in(getattr(result, "data", None))
        unused = spend.requested - spend.actual
        if unused > 0:
            budget: Budget = self.execution_context.context.services.budget
            spend.cost = await budget.store.take(budget.cost, spend.key, -unused)

    async def on_operation(self) -> AsyncIterator[None]:
        yield
        if self.spend is not None:
            _headers(self.execution_context.context.response, self.spend)

    def get_results(self) -> dict[str, Any]:
        return {"cost": self.spend.extensions()} if self.spend is not None else {}


async def _charge(ctx: ExecutionContext, report: Report) -> Spend:
    context = ctx.context
    budget: Budget = context.services.budget
    key = await _caller(context)
    money: Taken | None = None
    if report.money_mutations:
        money = await budget.store.take(budget.money, key, report.money_mutations)
        if not money.allowed:
            cost = await budget.store.take(budget.cost, key, 0)
            return Spend(key, report.cost, cost, money)
    cost = await budget.store.take(budget.cost, key, report.cost)
    if not cost.allowed and money is not None:
        money = await budget.store.take(budget.money, key, -report.money_mutations)
    return Spend(key, report.cost, cost, money)


def _headers(response: object, spend: Spend) -> None:
    """HTTP only (a socket has no headers; ``extensions.cost`` says it all there). Other
    policies (the sign-in throttle) may have written their members already: append."""
    if not isinstance(response, Response):
        return
    for taken in (spend.cost, spend.money):
        if taken is None:
            continue
        policy, state = taken.headers()
        for name, value in (("RateLimit-Policy", policy), ("RateLimit", state)):
            existing = response.headers.get(name)
            response.headers[name] = f"{existing}, {value}" if existing else value
    refused = spend.refused()
    if refused is not None:
        response.status_code = 429
        response.headers["Retry-After"] = str(refused.retry_after)
