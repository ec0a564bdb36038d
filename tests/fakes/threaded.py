"""A real uvicorn server in a background thread on a free 127.0.0.1 port, for fake providers."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn
from starlette.types import ASGIApp


class ThreadedServer:
    """Subclasses set ``self.app`` and ``self.label`` before ``start()``; use as a context
    manager or call ``start()``/``stop()``. ``_stopped()`` is an event set on stop, so slow
    handlers end and shutdown is quick."""

    app: ASGIApp
    label = "fake server"

    def __init__(self) -> None:
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        if not self._port:
            raise RuntimeError(f"the {self.label} is not started")
        return f"http://127.0.0.1:{self._port}"

    def start(self, *, same_port: bool = False) -> None:
        """``same_port``: listen where the last start did (a provider coming back after an
        outage), instead of on a new free port."""
        # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted connections only when
        # the listening socket says it is TCP; with proto 0 each response waits ~40 ms for the
        # client's delayed ACK (Nagle).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port if same_port else 0))
        self._port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        server = uvicorn.Server(config)
        self._server = server
        self._stop_event = None
        self._loop = None
        self._thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=self.label, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.label} did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _stopped(self) -> asyncio.Event:
        """The stop event, created on the server's own loop (it runs in the server thread)."""
        if self._stop_event is None:
            self._loop = asyncio.get_running_loop()
            self._stop_event = asyncio.Event()
        return self._stop_event
