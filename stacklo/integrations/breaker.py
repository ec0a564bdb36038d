"""The circuit breaker every outbound HTTP adapter wraps its calls in (purgatory).

One logical call (its retries included) is one success or failure. While the circuit is open,
calls fail at once with ``ProviderUnavailable`` without touching the network.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import httpx
import structlog
from prometheus_client import Counter, Gauge
from purgatory import AsyncCircuitBreakerFactory, ContextChanged, Event
from purgatory.domain.model import OpenedState
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from stacklo.domain.ports import ProviderUnavailable

T = TypeVar("T")
log = structlog.get_logger("stacklo.integrations")

# Per process (each process trips its own breaker); "max" so a multi-worker /metrics shows 1
# while any worker's circuit is open.
CIRCUIT_OPEN = Gauge(
    "stacklo_provider_circuit_open",
    "1 while the provider's circuit is open (calls refused without touching the network).",
    ["provider"],
    multiprocess_mode="max",
)
CIRCUIT_CHANGES = Counter(
    "stacklo_provider_circuit_changes_total",
    "Circuit state changes, by provider and the state entered.",
    ["provider", "state"],
)


class CircuitOpen(ProviderUnavailable):
    """The circuit is open: the call was refused without touching the network."""


class BreakerClient:
    """An httpx client behind a named circuit; subclasses make the calls through ``guarded``."""

    def __init__(
        self,
        name: str,
        client: httpx.AsyncClient,
        *,
        threshold: int,
        ttl_seconds: float,
        exclude: Sequence[type[BaseException]] = (),
    ):
        self._name = name
        self._client = client
        self._circuit = f"{name}:{client.base_url}"
        self._breakers = AsyncCircuitBreakerFactory(
            default_threshold=threshold, default_ttl=ttl_seconds, exclude=list(exclude)
        )
        self._breakers.add_listener(self._on_breaker_event)
        self._circuit_state = "closed"
        CIRCUIT_OPEN.labels(name).set(0)

    def __repr__(self) -> str:  # never the client's headers: they may carry a secret key
        return f"<{type(self).__name__} {self._client.base_url} circuit={self._circuit_state}>"

    @property
    def circuit_state(self) -> str:
        """``closed``, ``opened`` or ``half-opened``, as last recorded (for health checks).

        The breaker leaves ``opened`` lazily: on the first call after its ttl.
        """
        return self._circuit_state

    async def aclose(self) -> None:
        await self._client.aclose()

    async def __aenter__(self: T) -> T:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def guarded(self, call: Callable[[], Awaitable[T]]) -> T:
        try:
            breaker = await self._breakers.get_breaker(self._circuit)
            async with breaker:
                return await call()
        except OpenedState as exc:
            # purgatory raises the same OpenedState instance on every refused call, and each
            # raise appends frames to its traceback: drop them so an outage leaks no memory.
            exc.with_traceback(None)
            raise CircuitOpen(f"{self._name}: circuit open, call not attempted") from None

    async def retried(
        self,
        call: Callable[[], Awaitable[T]],
        *,
        attempts: int,
        retry_if: Callable[[BaseException], bool],
        wait: float,
        max_wait: float,
        **context: str,
    ) -> T:
        """``call`` again after a failure ``retry_if`` accepts, with jittered exponential
        backoff (``wait * 2**n`` plus up to ``wait``, capped at ``max_wait``); the last
        failure is re-raised."""

        def before_sleep(state: RetryCallState) -> None:
            failure = state.outcome.exception() if state.outcome else None
            log.warning(
                f"{self._name}.retry", attempt=state.attempt_number, error=str(failure), **context
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential_jitter(multiplier=wait, max=max_wait, jitter=wait),
            retry=retry_if_exception(retry_if),
            before_sleep=before_sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await call()
        raise AssertionError("tenacity ends by returning or re-raising")  # pragma: no cover

    def _on_breaker_event(self, circuit: str, kind: str, event: Event) -> None:
        if isinstance(event, ContextChanged):
            self._circuit_state = event.state
            CIRCUIT_OPEN.labels(self._name).set(1 if event.state == "opened" else 0)
            CIRCUIT_CHANGES.labels(self._name, event.state).inc()
            log.warning(f"{self._name}.circuit", state=event.state)
