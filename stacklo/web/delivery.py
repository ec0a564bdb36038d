"""Subscriptions a graphql-transport-ws socket delivers itself, once strawberry has admitted
them.

A subscribe message runs through strawberry like any operation: the limits, the cost budget,
the field's permission, then the resolver's own checks and the slot it takes, so a refusal
reaches the client exactly as before. The resolver then hands its events over
(``stacklo/schema/subscriptions.py``) and strawberry's part of the operation ends: an idle
subscription no longer holds an execution pipeline (extensions, executor, loaders, a task), only
what delivering its events needs.

- Own events (the viewer's transactions, wallets, notifications): the operation's task reads
  the resolver's events and executes each one for this subscriber alone, with fresh loaders.
- Shared events (rate ticks; the staff feeds): one ``Feed`` per selection (operation text,
  variables, operation name) and audience reads the events once, executes each once and
  serialises it once; each member socket is sent that text between its own frame prefix (its
  id) and suffix (its subscription's extensions, fixed when it started).

Invariant: a client receives, frame for frame, the text strawberry would have sent it for the
same events (same members, order and separators), each event once and in order: a member joins
a feed between two events and gets every later one. A member whose socket takes frames more
slowly than they come is closed (4413) once ``subscription_buffer`` of them wait, never
buffered without bound and never holding up the other members. When the broadcast connection
is lost, every member socket of every feed, and every socket delivering its own events, is
closed with 1012 (``stacklo/realtime/streams.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Hashable, Mapping
from dataclasses import dataclass
from inspect import isawaitable
from typing import Any

import strawberry
from graphql import DocumentNode, ExecutionResult, GraphQLError
from graphql.execution import Executor, execute_subscription_event
from prometheus_client import Counter, Gauge, Histogram

from stacklo.data.uow import limit_connections
from stacklo.domain.models import Viewer
from stacklo.realtime.broadcast import BroadcastLost
from stacklo.realtime.streams import (
    BROADCAST_LOST_CLOSE,
    BROADCAST_LOST_REASON,
    EVENTS_DELIVERED,
    SLOW_CONSUMER_CLOSE,
    SLOW_CONSUMER_REASON,
    SLOW_CONSUMERS,
    SlowConsumer,
)
from stacklo.schema.context import Context, Services
from stacklo.schema.errors import masked
from stacklo.schema.subscriptions import Handoff, release

FEEDS = Gauge(
    "stacklo_subscription_feeds",
    "Shared subscription feeds open: one per distinct selection and audience, however many "
    "sockets it serves.",
)
EXECUTIONS = Counter(
    "stacklo_subscription_executions_total",
    "Subscription events executed: shared (once for every member of a feed) or own (for one "
    "subscriber).",
    ["delivery"],
)

FANOUT_SECONDS = Histogram(
    "stacklo_subscription_fanout_seconds",
    "From a shared event's execution to its frame handed to every member socket of the feed.",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

# A feed writes to this many member sockets, then lets other work (a transfer's events) run.
FANOUT_SLICE = 128

Send = Callable[[str], Coroutine[Any, Any, None]]
Close = Callable[[int, str], Coroutine[Any, Any, None]]


def encode(value: object) -> str:
    """JSON as strawberry writes socket messages."""
    return json.dumps(value, separators=(",", ":"))


def body(result: ExecutionResult) -> str:
    """The ``data`` (and ``errors``) members of a ``next`` payload, serialised: the part of
    the frame every member of a feed shares."""
    text = encode(result.data)
    if result.errors:
        text += ',"errors":' + encode([error.formatted for error in result.errors])
    return text


def failure(error: Exception, services: Services | None) -> ExecutionResult:
    """What strawberry sends when a subscription's events fail: the error, through the
    error policy (anything unexpected is masked, logged and counted)."""
    coerced = (
        error if isinstance(error, GraphQLError) else GraphQLError(str(error), original_error=error)
    )
    return ExecutionResult(None, masked([coerced], services))


class Frames:
    """One subscription's frames: its id and extensions around a body, the text strawberry's
    ``send_next`` writes for the same result."""

    __slots__ = ("_id", "_prefix", "_suffix")

    def __init__(self, operation_id: str, extensions: Mapping[str, object]):
        self._id = operation_id
        self._prefix = '{"id":' + encode(operation_id) + ',"type":"next","payload":{"data":'
        # Subscriptions started with the same budget state share one suffix string.
        members = ',"extensions":' + encode(extensions) if extensions else ""
        self._suffix = sys.intern(members + "}}")

    def next(self, shared: str) -> str:
        return self._prefix + shared + self._suffix

    def complete(self) -> str:
        return encode({"id": self._id, "type": "complete"})


class Selection:
    """What a subscription asks of each event: its document, variables and operation name."""

    __slots__ = ("_document", "_operation_name", "_schema", "_variables")

    def __init__(
        self,
        schema: strawberry.Schema,
        document: DocumentNode,
        variables: dict[str, Any] | None,
        operation_name: str | None,
    ):
        self._schema = schema
        self._document = document
        self._variables = variables
        self._operation_name = operation_name

    def executor(self, context: Context) -> Executor[Any] | list[GraphQLError]:
        """graphql-core's executor for this operation, as strawberry builds it (its own
        executor class); each event runs on a copy with the event as root value."""
        return self._schema.execution_context_class.build(
            self._schema._schema,
            self._document,
            None,
            context,
            self._variables,
            self._operation_name,
            operation_extensions=None,
        )

    @staticmethod
    async def execute(
        executor: Executor[Any] | list[GraphQLError], root: object, services: Services
    ) -> ExecutionResult:
        """Execute the selection on one event; errors through the error policy."""
        if isinstance(executor, list):
            result = ExecutionResult(None, executor)
        else:
            outcome = execute_subscription_event(executor.build_per_event_executor(root))
            result = await outcome if isawaitable(outcome) else outcome
        if result.errors:
            result = ExecutionResult(result.data, masked(list(result.errors), services))
        return result


@dataclass(frozen=True, slots=True)
class Subscription:
    """A subscription strawberry admitted, as delivering it needs it: nothing of the
    admission (its extensions, executor, loaders) stays referenced."""

    frames: Frames
    selection: Selection
    events: Callable[[], AsyncIterator[object]]
    held: contextlib.AbstractAsyncContextManager[object]
    # Who shares its events (None: nobody) and the feed they share.
    audience: Hashable | None
    key: FeedKey | None

    @classmethod
    async def of(
        cls,
        handoff: Handoff[Any],
        schema: strawberry.Schema,
        operation_id: str,
        query: str,
        variables: dict[str, Any] | None,
        operation_name: str | None,
    ) -> Subscription:
        document = handoff.document
        assert document is not None
        audience = handoff.audience
        return cls(
            Frames(operation_id, await handoff.extension_results()),
            Selection(schema, document, variables, operation_name),
            handoff.events,
            handoff.held,
            audience,
            None if audience is None else feed_key(query, variables, operation_name, audience),
        )


async def close_events(events: AsyncIterator[object]) -> None:
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


# --------------------------------------------------------------------------- sending ----


def start(send: Coroutine[Any, Any, None]) -> asyncio.Future[None] | None:
    """Run ``send`` until it first waits: None when it finished without waiting (a socket
    that takes the frame writes it to the transport at once), else a task that finishes it.
    A feed writes to thousands of sockets per event this way, without a task for each and
    without one slow socket holding up the others."""
    try:
        waiting = send.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(send, waiting))


async def _finish(send: Coroutine[Any, Any, None], waiting: object) -> None:
    await _Resumed(send, waiting)


class _Resumed:
    """Awaiting this goes on with a coroutine that ``start`` ran by hand up to a wait: what
    it waits on goes to the awaiting task, which hands back the outcome (or cancellation)."""

    __slots__ = ("_coroutine", "_waiting")

    def __init__(self, coroutine: Coroutine[Any, Any, None], waiting: object):
        self._coroutine = coroutine
        self._waiting = waiting

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting = self._coroutine, self._waiting
        while True:
            try:
                value = yield waiting
            except BaseException as error:  # cancelled (or failed) while it waited
                try:
                    waiting = coroutine.throw(error)
                except StopIteration:
                    return
                continue
            try:
                waiting = coroutine.send(value)
            except StopIteration:
                return


_closing: set[asyncio.Future[None]] = set()


def _later(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` on its own, kept referenced until it is done."""
    task = asyncio.ensure_future(coroutine)
    _closing.add(task)
    task.add_done_callback(_closing.discard)


# ---------------------------------------------------------------------------- members ----


class Member:
    """One subscription a feed serves: its socket, its frames, what it holds (its slot), and
    the frames waiting while its socket is slow to take them."""

    __slots__ = (
        "_backlog",
        "_bound",
        "_close",
        "_ended",
        "_forget",
        "_frames",
        "_held",
        "_send",
        "_sending",
        "feed",
    )

    def __init__(
        self,
        send: Send,
        close: Close,
        frames: Frames,
        held: contextlib.AbstractAsyncContextManager[object],
        bound: int,
        forget: Callable[[], None],
    ):
        self._send = send
        self._close = close
        self._frames = frames
        self._held: contextlib.AbstractAsyncContextManager[object] | None = held
        self._bound = bound
        self._forget = forget
        self._backlog: deque[str] | None = None
        self._sending: asyncio.Future[None] | None = None
        self._ended = False
        self.feed: Feed | None = None

    def next(self, shared: str) -> None:
        self._push(self._frames.next(shared))

    def _push(self, text: str) -> None:
        if self._ended:
            return
        if self._sending is not None:
            if self._backlog is None:
                self._backlog = deque()
            if len(self._backlog) >= self._bound:
                self._slow()
            else:
                self._backlog.append(text)
            return
        try:
            waiting = start(self._send(text))
        except Exception:  # the socket is gone: its handler is cleaning up
            self._ended = True
            return
        if waiting is not None:
            self._sending = asyncio.ensure_future(self._drain(waiting))

    async def _drain(self, waiting: asyncio.Future[None]) -> None:
        try:
            await waiting
            while self._backlog:
                await self._send(self._backlog.popleft())
        except Exception:
            self._ended = True
        finally:
            self._sending = None
            self._backlog = None

    def _slow(self) -> None:
        SLOW_CONSUMERS.inc()
        self._cut(SLOW_CONSUMER_CLOSE, SLOW_CONSUMER_REASON)

    def _cut(self, code: int, reason: str) -> None:
        self._ended = True
        _later(self._close(code, reason))

    def end(self, final: str | None) -> None:
        """The feed ended: the error it ended with, if any, then ``complete``; the
        subscription's id is free again."""
        self._forget()
        if final is not None:
            self._push(self._frames.next(final))
        self._push(self._frames.complete())
        self._ended = True
        _later(self._release())

    def closed(self) -> None:
        """The feed's events overflowed: this subscriber is cut off like a slow one."""
        if not self._ended:
            self._slow()

    def lost(self) -> None:
        """The feed's live events were interrupted: the socket is closed (1012), and the
        client subscribes again."""
        if not self._ended:
            self._cut(BROADCAST_LOST_CLOSE, BROADCAST_LOST_REASON)

    async def leave(self) -> None:
        """The client completed the subscription, or its socket closed."""
        self._ended = True
        if self.feed is not None:
            self.feed.remove(self)
        if self._sending is not None:
            self._sending.cancel()
        await self._release()

    async def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await release(held)


# ------------------------------------------------------------------------------ feeds ----

FeedKey = tuple[str, str, str | None, Hashable]


def feed_key(
    query: str, variables: dict[str, Any] | None, operation_name: str | None, audience: Hashable
) -> FeedKey:
    """Subscriptions with equal keys read every event the same way."""
    return (query, json.dumps(variables or {}, sort_keys=True), operation_name, audience)


class Feed:
    """One selection's events for every member socket: read once, executed once, serialised
    once."""

    def __init__(
        self,
        feeds: Feeds,
        key: FeedKey,
        selection: Selection,
        context: Context,
        viewer: Viewer | None,
        events: Callable[[], AsyncIterator[object]],
    ):
        self._feeds = feeds
        self.key = key
        self._selection = selection
        self._context = context
        self._viewer = viewer
        self._events = events
        self.members: dict[Member, None] = {}
        self.ended = False
        # An empty context: the feed is nobody's request (logs carry no socket's request id).
        self.task = asyncio.create_task(self._run(), context=contextvars.Context())

    def add(self, member: Member) -> None:
        member.feed = self
        self.members[member] = None

    def remove(self, member: Member) -> None:
        self.members.pop(member, None)
        if not self.members and not self.ended:
            self.ended = True
            self.task.cancel()
            self._feeds.drop(self)  # also when the task is cancelled before it ever ran

    async def _run(self) -> None:
        services = self._context.services
        limit_connections(services.settings.db_connections_per_request)
        final: str | None = None
        try:
            executor = self._selection.executor(self._context)
            events = self._events()
            try:
                async for root in events:
                    self._context.begin_operation(self._viewer)
                    result = await Selection.execute(executor, root, services)
                    EXECUTIONS.labels("shared").inc()
                    await self._fan_out(body(result))
            finally:
                await close_events(events)
        except SlowConsumer:
            self._end()
            for member in tuple(self.members):
                member.closed()
            return
        except BroadcastLost:
            self._end()
            for member in tuple(self.members):
                member.lost()
            return
        except Exception as error:
            final = body(failure(error, services))
        finally:
            self._feeds.drop(self)
        self._end()
        for member in tuple(self.members):
            member.end(final)

    def _end(self) -> None:
        self.ended = True

    async def _fan_out(self, text: str) -> None:
        started = time.perf_counter()
        members = tuple(self.members)
        for n, member in enumerate(members, 1):
            member.next(text)
            if n % FANOUT_SLICE == 0:
                await asyncio.sleep(0)
        FANOUT_SECONDS.observe(time.perf_counter() - started)
        if len(members) > 1:  # the stream counted the feed's own delivery once
            EVENTS_DELIVERED.inc(len(members) - 1)


class Feeds:
    """The shared feeds of this process, by key."""

    def __init__(self) -> None:
        self._feeds: dict[FeedKey, Feed] = {}

    def join(self, key: FeedKey, member: Member, start: Callable[[], Feed]) -> None:
        """``member`` gets every event of ``key``'s feed from now on; ``start`` makes the
        feed when there is none."""
        feed = self._feeds.get(key)
        if feed is None or feed.ended:
            feed = start()
            self._feeds[key] = feed
            FEEDS.inc()
        feed.add(member)

    def drop(self, feed: Feed) -> None:
        if self._feeds.get(feed.key) is feed:
            del self._feeds[feed.key]
            FEEDS.dec()

    def __len__(self) -> int:
        return len(self._feeds)
