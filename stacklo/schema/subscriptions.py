"""How a subscription resolver hands its events to whoever delivers them.

A resolver checks who asks and what (arguments, cursors) and takes what it holds (its slot)
inside strawberry, so a refusal reaches the client exactly as any resolver error does. Then it
passes its events to ``delivered``: where the socket delivers the operation itself
(``stacklo/web/delivery.py``), it takes them, with the slot, and strawberry's part of the
operation ends; anywhere else the events are yielded here, to strawberry, as they always were.

``audience`` says who else would read an event the same way: None, nobody (the viewer's own
transactions and wallets: executed for this subscriber alone); otherwise every subscription
with the same selection and an equal audience shares one execution of each event.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from graphql import DocumentNode
from strawberry.extensions import SchemaExtension

from stacklo.schema.errors import QuietSchema

T = TypeVar("T")

# Every subscriber may read these events (signed in; the field's permission said so).
EVERYONE = "everyone"


@dataclass(frozen=True, slots=True)
class Handoff(Generic[T]):
    """A subscription past its checks: where its events come from, what it holds until it
    ends (closed then), who shares its events, and its operation's extensions (their
    results go out with every event, as strawberry sends them)."""

    events: Callable[[], AsyncIterator[T]]
    held: contextlib.AbstractAsyncContextManager[object]  # entered; exit it once, at the end
    audience: Hashable | None
    extensions: tuple[SchemaExtension, ...]

    @property
    def document(self) -> DocumentNode | None:
        for extension in self.extensions:
            return extension.execution_context.graphql_document
        return None

    async def extension_results(self) -> dict[str, Any]:
        """What strawberry would add as ``extensions`` to each event of this subscription."""
        results: dict[str, Any] = {}
        for extension in self.extensions:
            found = extension.get_results()
            if not isinstance(found, dict):
                found = await found
            results.update(found)
        return results


Taker = Callable[[Handoff[Any]], bool]

_taker: contextvars.ContextVar[Taker | None] = contextvars.ContextVar(
    "stacklo_subscription_taker", default=None
)
_extensions: contextvars.ContextVar[tuple[SchemaExtension, ...]] = contextvars.ContextVar(
    "stacklo_operation_extensions", default=()
)


@contextlib.contextmanager
def taking(taker: Taker) -> Iterator[None]:
    """Operations run in this block (this task) offer their subscription to ``taker``,
    which answers whether it took it."""
    token = _taker.set(taker)
    try:
        yield
    finally:
        _taker.reset(token)


async def delivered(
    held: contextlib.AbstractAsyncContextManager[object],
    events: Callable[[], AsyncIterator[T]],
    *,
    audience: Hashable | None = None,
) -> AsyncIterator[T]:
    """Enter ``held`` (its refusal is this subscription's error, as always), then hand the
    events on; yields them here only when nobody takes them."""
    await held.__aenter__()
    taker = _taker.get()
    if taker is not None and taker(Handoff(events, held, audience, _extensions.get())):
        return
    try:  # as ``async with held`` would
        async for event in events():
            yield event
    except BaseException as error:
        if not await held.__aexit__(type(error), error, error.__traceback__):
            raise
    else:
        await held.__aexit__(None, None, None)


async def release(held: contextlib.AbstractAsyncContextManager[object]) -> None:
    """Exit what a handed-over subscription held (once, when it ends)."""
    await held.__aexit__(None, None, None)


class HandoverSchema(QuietSchema):
    """Keeps each operation's extensions where its subscription resolver can hand them over
    (the extensions are made per operation, in the task that runs it)."""

    def get_extensions(self, sync: bool = False) -> list[SchemaExtension]:
        extensions = super().get_extensions(sync)
        _extensions.set(tuple(extensions))
        return extensions
