"""The GraphQL endpoint over HTTP and WebSocket.

A WebSocket is signed in by the token in ``connection_init`` (or, failing that, the
``Authorization`` header of the handshake). Either way the socket then:

- closes with 4403 when its access token expires;
- is registered with the process's ``SessionGuard``, which closes it with 4403 the moment its
  session ends, in whichever process that happened (``stacklo/realtime/sessions.py``);
- authenticates its token again before every operation, as every HTTP request does, and runs
  each operation with its own viewer and batch loaders;
- over graphql-transport-ws, delivers the subscriptions strawberry admitted itself
  (``stacklo/web/delivery.py``): the viewer's own events executed for them, an event that
  reads the same for many sockets executed once for them all;
- closes with 1012 when the broadcast connection its subscriptions listen on is lost (events
  may have been missed: the client subscribes again with its last cursor).

A socket that is not signed in is closed (4408) after ``ws_idle_anonymous_seconds`` without an
operation, and one client address holds at most ``ws_sockets_per_address`` sockets per process
(the handshake past it is answered 429).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from cross_web import HTTPException
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLFormattedError
from prometheus_client import Counter as Metric
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ErrorMessage as TransportErrorMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.handlers import BaseGraphQLWSHandler
from strawberry.subscriptions.protocols.graphql_ws.types import (
    ConnectionInitMessage as LegacyInitMessage,
)
from strawberry.subscriptions.protocols.graphql_ws.types import ErrorMessage, StartMessage
from strawberry.types import ExecutionResult

from stacklo import graphiql
from stacklo.api import schema
from stacklo.auth.throttle import address_key
from stacklo.config import Settings
from stacklo.data.uow import limit_connections
from stacklo.domain.errors import AccessError
from stacklo.domain.models import RequestMeta, Viewer
from stacklo.observability import request_id_var
from stacklo.realtime.broadcast import BroadcastLost
from stacklo.realtime.sessions import SESSION_ENDED_CLOSE
from stacklo.realtime.streams import (
    BROADCAST_LOST_CLOSE,
    BROADCAST_LOST_REASON,
    SLOW_CONSUMER_CLOSE,
    SLOW_CONSUMER_REASON,
    SlowConsumer,
)
from stacklo.schema.context import Context, Services
from stacklo.schema.errors import UNAVAILABLE, unavailable
from stacklo.schema.limits import count_tokens, refusal
from stacklo.schema.subscriptions import Handoff, Taker, release, taking
from stacklo.web.delivery import (
    EXECUTIONS,
    Feed,
    FeedKey,
    Feeds,
    Member,
    Selection,
    Subscription,
    body,
    close_events,
    failure,
)
from stacklo.web.persisted import PersistedQueries, PersistedRefusal

IDLE_CLOSE = 4408
UNAVAILABLE_CLOSE = 1013  # RFC 6455 "Try Again Later": the database is away for a moment
# Headers a browser form cannot send: a multipart request needs one (CSRF), as Apollo's
# upload link and Apollo Server do it.
PREFLIGHT_HEADERS = ("apollo-require-preflight", "x-apollo-operation-name", "graphql-preflight")

SOCKETS_REFUSED = Metric(
    "stacklo_websocket_refused_total",
    "WebSocket handshakes refused because the client address holds too many sockets.",
)


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` value; anything else is no token."""
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def client_address(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def request_meta(request: Request | WebSocket) -> RequestMeta:
    """Who asked, from where: the one builder of audit metadata for every route."""
    return RequestMeta(
        ip_address=request.client.host if request.client else None,
        user_agent=(request.headers.get("user-agent") or "")[:256] or None,
        request_id=request_id_var.get(),
    )


GRAPHQL_RESPONSE = "application/graphql-response+json; charset=utf-8"


def wants_graphql_response(request: Request) -> bool:
    """The client accepts application/graphql-response+json (the GraphQL-over-HTTP media
    type); otherwise it gets application/json, as clients written before it expect."""
    accept = request.headers.get("accept", "").lower()
    for part in accept.split(","):
        media, _, params = part.strip().partition(";")
        if media.strip() == "application/graphql-response+json":
            return "q=0" not in params.replace(" ", "") or "q=0." in params.replace(" ", "")
    return False


def not_executed(result: ExecutionResult) -> bool:
    """Refused before execution: the document did not parse or validate, a variable did not
    coerce, or a limit said no. (Execution errors always carry a path.)"""
    errors = result.errors or []
    return result.data is None and bool(errors) and all(e.path is None for e in errors)


def error_response(
    status: int,
    message: str,
    code: str,
    extensions: Mapping[str, object] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A refusal outside GraphQL execution, still shaped as a GraphQL answer."""
    return JSONResponse(
        {"errors": [{"message": message, "extensions": {"code": code, **(extensions or {})}}]},
        status_code=status,
        headers=headers,
    )


def query_refused(query: object, settings: Settings) -> GraphQLFormattedError | None:
    """The GraphQL error for operation text past the length or token limits, found before
    parsing (the parser costs about 10 us a token: even its own token limit is not cheap)."""
    if not isinstance(query, str):
        return None
    if len(query) > settings.max_query_chars:
        return refusal(
            "characters",
            len(query),
            settings.max_query_chars,
            f"The operation has {len(query)} characters; at most {settings.max_query_chars} "
            "are allowed.",
        ).formatted
    tokens = count_tokens(query)
    if tokens > settings.max_query_tokens:
        return refusal(
            "tokens",
            tokens,
            settings.max_query_tokens,
            f"The operation has {tokens} tokens; at most {settings.max_query_tokens} are allowed.",
        ).formatted
    return None


class Refused(HTTPException):
    """A request refused before execution, with the GraphQL error to answer."""

    def __init__(self, status: int, error: GraphQLFormattedError):
        super().__init__(status, error["message"])
        self.error = error


class SocketState:
    """One WebSocket connection: how to close it, and the timers and registration it holds."""

    def __init__(self, idle_seconds: float):
        self._idle = idle_seconds
        self._websocket: WebSocket | None = None
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._registration: contextlib.AbstractContextManager[None] | None = None
        self.signed_in = False
        self.closed = False

    def attach(self, websocket: WebSocket) -> None:
        """The socket strawberry serves (closing through it keeps its state consistent)."""
        self._websocket = websocket

    async def close(self, code: int, reason: str) -> None:
        if self.closed or self._websocket is None:
            return
        self.closed = True
        with contextlib.suppress(Exception):
            await self._websocket.close(code=code, reason=reason)

    def sign_in(self, viewer: Viewer, services: Services) -> None:
        """Close at token expiry, and when the session ends (any process)."""
        self.signed_in = True
        self._cancel("idle")
        delay = (viewer.token_expires_at - datetime.now(UTC)).total_seconds()
        self._later("expiry", max(delay, 0.0), SESSION_ENDED_CLOSE, "token expired")
        registration = services.sessions.register(viewer.session_id, self.close)
        registration.__enter__()
        self._registration = registration

    def touch(self) -> None:
        """An operation started; a socket that is not signed in may idle only so long."""
        if not self.signed_in:
            self._later("idle", self._idle, IDLE_CLOSE, "idle: no operation")

    def release(self) -> None:
        for name in list(self._timers):
            self._cancel(name)
        registration, self._registration = self._registration, None
        if registration is not None:
            registration.__exit__(None, None, None)

    def _later(self, name: str, delay: float, code: int, reason: str) -> None:
        self._cancel(name)
        self._timers[name] = asyncio.get_running_loop().call_later(
            delay, self._close_soon, code, reason
        )

    def _close_soon(self, code: int, reason: str) -> None:
        task = asyncio.ensure_future(self.close(code, reason))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def _cancel(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()


class _Ended:
    """The socket's session ended: the operation does not start."""


Screened = GraphQLFormattedError | Viewer | None | _Ended


async def screen(context: Context, payload: object, persisted: PersistedQueries) -> Screened:
    """Before an operation on a socket starts, in the socket's message loop (so operations
    start in the order they were sent): refuse text past the length or token limits (the
    error to send), resolve a persisted query's hash to its text (into ``payload``), then
    authenticate the token again. An ended session or an expired token closes the socket
    with 4403 and gives ``_Ended``: nothing runs. Otherwise the viewer the operation runs
    as."""
    query = payload.get("query") if isinstance(payload, dict) else None
    error = query_refused(query, context.services.settings)
    if error is not None:
        return error
    if isinstance(payload, dict):
        extensions = payload.get("extensions")
        try:
            payload["query"] = await persisted.resolve(
                query, extensions if isinstance(extensions, dict) else None
            )
        except PersistedRefusal as refused:
            return refused.error
    state: SocketState = context.socket
    state.touch()
    if not (state.signed_in and context.bearer):
        return None
    try:
        return await context.services.authenticator.authenticate(context.bearer)
    except AccessError:
        await state.close(SESSION_ENDED_CLOSE, "session ended")
        return _Ended()
    except Exception as away:  # the database away: this operation is refused, not the socket
        retry = unavailable(away)
        if retry is None:
            raise
        return {"message": UNAVAILABLE, "extensions": retry}


def _view(view: object) -> GraphQLApp:
    assert isinstance(view, GraphQLApp)
    return view


def _persisted(view: object) -> PersistedQueries:
    return _view(view).persisted()


def begin_operation(context: Context, viewer: Viewer | None) -> None:
    """In the operation's task: its own viewer, batch loaders and database budget."""
    context.begin_operation(viewer)
    limit_connections(context.services.settings.db_connections_per_request)


async def unavailable_at_sign_in(context: Context, error: Exception) -> None:
    """Signing a socket in needs the database: while it is away, close with 1013 (try again
    later), not 4403 (which tells the client its token is bad). Anything else is raised."""
    if unavailable(error) is None:
        raise error
    await context.socket.close(UNAVAILABLE_CLOSE, "service unavailable: reconnect shortly")


class TransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws, with subscriptions delivered here once strawberry has admitted
    them (``stacklo/web/delivery.py``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._viewers: dict[str, Viewer | None] = {}
        self._members: dict[str, Member] = {}

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except Exception as error:
            await unavailable_at_sign_in(self.context, error)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        operation_id = message["id"]
        if self.connection_acknowledged and operation_id not in self.operations:
            screened = await screen(self.context, message.get("payload"), _persisted(self.view))
            if isinstance(screened, _Ended):
                return
            if isinstance(screened, dict):
                error = TransportErrorMessage(id=operation_id, type="error", payload=[screened])
                await self.send_message(error)
                return
            self._viewers[operation_id] = screened
        await super().handle_subscribe(message)
        if operation_id not in self.operations:
            self._viewers.pop(operation_id, None)  # refused (e.g. the per-socket limit)

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        viewer = self._viewers.pop(operation.id, None)
        subscription = await self._admitted(operation, viewer)
        if subscription is None:
            return
        if subscription.key is None:
            await self._deliver_own(operation, subscription, viewer)
        else:
            self._join(operation, subscription, subscription.key, viewer)

    async def _admitted(
        self, operation: Operation[Context, None], viewer: Viewer | None
    ) -> Subscription | None:
        """strawberry runs the operation, in a task of its own (its viewer, loaders and
        extensions end with it); the subscription it admitted, if its resolver handed one
        over."""
        taken: list[Handoff[Any]] = []

        def take(handoff: Handoff[Any]) -> bool:
            if taken or handoff.document is None:
                return False
            # strawberry's own "complete" at the end of its (now empty) stream is not sent,
            # and the operation stays registered: the subscription goes on here.
            operation.completed = True
            taken.append(handoff)
            return True

        try:
            await asyncio.create_task(self._admit(operation, viewer, take))
            if not taken:
                return None
            if self.operations.get(operation.id) is not operation:  # completed meanwhile
                await release(taken.pop().held)
                return None
            return await Subscription.of(
                taken[0],
                schema,
                operation.id,
                operation.query,
                operation.variables,
                operation.operation_name,
            )
        except BaseException:
            for handoff in taken:
                await release(handoff.held)
            raise

    async def _admit(
        self, operation: Operation[Context, None], viewer: Viewer | None, take: Taker
    ) -> None:
        begin_operation(self.context, viewer)
        with taking(take):
            await super().run_operation(operation)

    async def _deliver_own(
        self, operation: Operation[Context, None], subscription: Subscription, viewer: Viewer | None
    ) -> None:
        """This subscriber's own events, each executed for them (in a task of its own, with
        fresh loaders), in order; then ``complete``, as strawberry ends a stream."""
        services = self.context.services
        limit_connections(services.settings.db_connections_per_request)
        frames = subscription.frames
        final: str | None = None
        try:
            events = subscription.events()
            try:
                async for root in events:
                    result = await asyncio.create_task(
                        self._execute(subscription.selection, viewer, root)
                    )
                    EXECUTIONS.labels("own").inc()
                    await self._send_text(frames.next(body(result)))
            finally:
                await close_events(events)
                await release(subscription.held)
        except SlowConsumer:
            await self.context.socket.close(SLOW_CONSUMER_CLOSE, SLOW_CONSUMER_REASON)
            return
        except BroadcastLost:
            await self.context.socket.close(BROADCAST_LOST_CLOSE, BROADCAST_LOST_REASON)
            return
        except _Gone:
            return
        except Exception as error:
            final = body(failure(error, services))
        with contextlib.suppress(_Gone):
            if final is not None:
                await self._send_text(frames.next(final))
            self._forget(operation)
            await self._send_text(frames.complete())

    async def _execute(
        self, selection: Selection, viewer: Viewer | None, root: object
    ) -> GraphQLExecutionResult:
        begin_operation(self.context, viewer)
        executor = selection.executor(self.context)
        return await Selection.execute(executor, root, self.context.services)

    def _join(
        self,
        operation: Operation[Context, None],
        subscription: Subscription,
        key: FeedKey,
        viewer: Viewer | None,
    ) -> None:
        """A member of the feed for this selection and audience, started if there is none."""
        member = Member(
            self.context.request.send_text,
            self.context.socket.close,
            subscription.frames,
            subscription.held,
            self.context.services.settings.subscription_buffer,
            lambda: self._forget(operation),
        )
        self._members[operation.id] = member
        feeds = _view(self.view).feeds
        services, meta = self.context.services, self.context.meta

        def start() -> Feed:
            own = Context(services=services, meta=meta)
            return Feed(feeds, key, subscription.selection, own, viewer, subscription.events)

        feeds.join(key, member, start)

    def _forget(self, operation: Operation[Context, None]) -> None:
        """The subscription ended on its own: its id is free again."""
        if self.operations.get(operation.id) is operation:
            del self.operations[operation.id]
        self._members.pop(operation.id, None)

    async def _send_text(self, text: str) -> None:
        try:
            await self.context.request.send_text(text)
        except (WebSocketDisconnect, RuntimeError, OSError):
            raise _Gone() from None

    async def cleanup_operation(self, operation_id: str) -> None:
        await super().cleanup_operation(operation_id)
        member = self._members.pop(operation_id, None)
        if member is not None:
            await member.leave()


class _Gone(Exception):
    """The socket went away while a frame was being sent."""


class LegacyWSHandler(BaseGraphQLWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._viewers: dict[str, Viewer | None] = {}

    async def handle_connection_init(self, message: LegacyInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except Exception as error:
            await unavailable_at_sign_in(self.context, error)

    async def handle_start(self, message: StartMessage) -> None:
        operation_id = message["id"]
        if self.connection_acknowledged:
            screened = await screen(self.context, message.get("payload"), _persisted(self.view))
            if isinstance(screened, _Ended):
                return
            if isinstance(screened, dict):
                await self.send_message(
                    ErrorMessage(type="error", id=operation_id, payload=screened)
                )
                return
            self._viewers[operation_id] = screened
        await super().handle_start(message)
        if operation_id not in self.tasks:
            self._viewers.pop(operation_id, None)

    async def handle_async_results(
        self,
        operation_id: str,
        query: str,
        operation_name: str | None,
        variables: dict[str, object] | None,
    ) -> None:
        begin_operation(self.context, self._viewers.pop(operation_id, None))
        await super().handle_async_results(operation_id, query, operation_name, variables)


class SocketCounter:
    """Open sockets per client address, in this process."""

    def __init__(self, limit: int):
        self._limit = limit
        self._open: Counter[str] = Counter()

    def admit(self, key: str) -> bool:
        if self._open[key] >= self._limit:
            return False
        self._open[key] += 1
        return True

    def release(self, key: str) -> None:
        self._open[key] -= 1
        if self._open[key] <= 0:
            del self._open[key]


class GraphQLApp(GraphQL[Context, None]):
    """strawberry's ASGI app with our context, socket sign-in, JSON 4xx and offline GraphiQL."""

    graphql_transport_ws_handler_class = TransportWSHandler
    graphql_ws_handler_class = LegacyWSHandler

    def __init__(
        self,
        settings: Settings,
        services: Callable[[], Services],
        persisted: Callable[[], PersistedQueries],
    ):
        super().__init__(
            schema,
            keep_alive=True,
            keep_alive_interval=15,
            subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
            connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
            multipart_uploads_enabled=True,
            max_subscriptions_per_connection=settings.ws_operations_per_socket,
            # The same allowlist as CORS: a page elsewhere cannot open a socket in its user's
            # name (same-origin pages always can).
            allowed_origins=settings.allowed_origins,
        )
        self.settings = settings
        self._services = services
        self.persisted = persisted
        self._sockets = SocketCounter(settings.ws_sockets_per_address)
        self.feeds = Feeds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            response = await self._http(Request(scope, receive))
            await response(scope, receive, send)
        elif scope["type"] == "websocket":
            key = address_key(client_address(scope))
            if not self._sockets.admit(key):
                SOCKETS_REFUSED.inc()
                await WebSocket(scope, receive, send).send_denial_response(
                    error_response(
                        429,
                        "Too many open WebSockets from this address.",
                        "RATE_LIMITED",
                        headers={"Retry-After": "30"},
                    )
                )
                return
            state = SocketState(self.settings.ws_idle_anonymous_seconds)
            scope["stacklo.socket"] = state
            try:
                await super().__call__(scope, receive, send)
            finally:
                state.release()
                self._sockets.release(key)
        else:
            await super().__call__(scope, receive, send)

    async def _http(self, request: Request) -> Response:
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith("multipart/") and not any(
            request.headers.get(h) for h in PREFLIGHT_HEADERS
        ):
            return error_response(
                400,
                "Multipart requests need an Apollo-Require-Preflight header (CSRF protection).",
                "BAD_REQUEST",
            )
        try:
            response = await self.run(request)
        except Refused as e:
            response = JSONResponse({"errors": [e.error]}, status_code=e.status_code)
            request.state.not_executed = True
        except HTTPException as e:
            # A malformed body is still a GraphQL answer: JSON with an errors list.
            response = error_response(e.status_code, e.reason, "BAD_REQUEST")
        if wants_graphql_response(request) and response.media_type in (None, "application/json"):
            response.headers["content-type"] = GRAPHQL_RESPONSE
            if getattr(request.state, "not_executed", False) and response.status_code == 200:
                response.status_code = 400
        return response

    async def process_result(self, request: Request, result: ExecutionResult) -> Any:
        answer = await super().process_result(request, result)
        if wants_graphql_response(request) and not_executed(result):
            # GraphQL over HTTP: a request that never reached execution has no data entry
            # and answers 400 (application/json keeps the 200 older clients expect).
            answer.pop("data", None)
            request.state.not_executed = True
        return answer

    async def parse_http_body(self, request: Any) -> Any:
        data = await super().parse_http_body(request)
        items = data if isinstance(data, list) else [data]
        for item in items:
            error = query_refused(item.query, self.settings)
            if error is not None:
                raise Refused(400, error)
        try:
            resolved = [
                dataclasses.replace(
                    item, query=await self.persisted().resolve(item.query, item.extensions)
                )
                for item in items
            ]
        except PersistedRefusal as refused:
            # Not found is the usual first step of Apollo's protocol, answered like any
            # GraphQL error: 200 as JSON, 400 (nothing ran) as graphql-response+json.
            raise Refused(refused.status, refused.error) from None
        return resolved if isinstance(data, list) else resolved[0]

    def should_render_graphql_ide(self, request: Any) -> bool:
        # A GET naming its operation by hash alone is an API call, not a browser's visit.
        return (
            super().should_render_graphql_ide(request)
            and request.query_params.get("extensions") is None
        )

    def parse_json(self, data: str | bytes) -> Any:
        # Not UTF-8, or nested past the parser's recursion limit: the client's fault, a 400.
        try:
            return super().parse_json(data)
        except (ValueError, RecursionError):
            raise HTTPException(400, "Unable to parse request body as JSON") from None

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        services = self._services()
        context = Context(
            services=services,
            meta=request_meta(request),
            bearer=bearer_token(request.headers.get("authorization")),
            request=request,
            response=response,
        )
        if isinstance(request, WebSocket):
            context.socket = request.scope["stacklo.socket"]
            context.socket.attach(request)
        else:
            limit_connections(self.settings.db_connections_per_request)
        return context

    async def on_ws_connect(self, context: Context) -> dict[str, object] | None:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        raw = params.get("authorization") or params.get("Authorization")
        if raw is not None:
            token = bearer_token(raw) if isinstance(raw, str) else None
            if token is None:
                raise ConnectionRejectionError({"message": "Malformed authorization"})
            context.bearer = token
        state: SocketState = context.socket
        if context.bearer is None:
            state.touch()  # not signed in: it may only idle so long
            return None
        try:
            viewer = await context.services.authenticator.authenticate(context.bearer)
        except AccessError as e:
            raise ConnectionRejectionError({"message": str(e)}) from None
        context.set_viewer(viewer)
        state.sign_in(viewer, context.services)
        return None

    async def render_graphql_ide(self, request: Request) -> Response:
        if not self.settings.graphiql_enabled:
            return error_response(404, "Not Found", "NOT_FOUND")
        nonce = secrets.token_urlsafe(16)
        return HTMLResponse(
            graphiql.render_html(request.url.path, nonce=nonce),
            headers={"Content-Security-Policy": graphiql.content_security_policy(nonce)},
        )


__all__ = ["GraphQLApp", "bearer_token", "request_meta"]
