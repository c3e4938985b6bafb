"""Liveness and readiness over HTTP, for Kubernetes probes and load balancers.

``GET /livez``  200 while the event loop runs and the heartbeat task is alive; 503 once a
supervised loop has kept failing for ``loop_unhealthy_after`` (:mod:`supervisor`).
``GET /readyz`` 200 ``ready`` while the worker fetches jobs; 503 ``draining`` from the
moment a shutdown starts, 503 ``redis unavailable`` while Redis cannot be reached.

The server answers only these paths, with plain text and no job data.  Extra routes
(such as metrics) can be added with :meth:`HealthServer.route`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

__all__ = ("HealthServer", "Route")

log = logging.getLogger("aioworker.health")

Route = Callable[[], tuple[int, str, bytes]]  # -> (status, content type, body)

_REASONS = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}


class HealthServer:
    """A tiny HTTP/1.1 server for probes.

    :param live: returns None when alive, else the reason it is not.
    :param ready: returns None when ready, else the reason it is not.
    """

    def __init__(
        self,
        live: Callable[[], str | None],
        ready: Callable[[], str | None],
        host: str = "0.0.0.0",
        port: int = 8080,
    ) -> None:
        self.host = host
        self.port = port
        self._routes: dict[str, Route] = {
            "/livez": lambda: self._probe(live()),
            "/healthz": lambda: self._probe(live()),
            "/readyz": lambda: self._probe(ready()),
        }
        self._server: asyncio.Server | None = None

    @staticmethod
    def _probe(reason: str | None) -> tuple[int, str, bytes]:
        if reason is None:
            return 200, "text/plain", b"ok\n"
        return 503, "text/plain", reason.encode() + b"\n"

    def route(self, path: str, handler: Route) -> None:
        self._routes[path] = handler

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.host, self.port)
        sock = self._server.sockets[0].getsockname()
        self.port = sock[1]
        log.info("health endpoints on http://%s:%d/livez and /readyz", self.host, self.port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    del line
            method, _, rest = request.decode("latin-1").partition(" ")
            path = rest.split(" ", 1)[0].split("?", 1)[0]
            handler = self._routes.get(path)
            if handler is None:
                status, ctype, body = 404, "text/plain", b"not found\n"
            elif method not in ("GET", "HEAD"):
                status, ctype, body = 405, "text/plain", b"method not allowed\n"
            else:
                status, ctype, body = handler()
            head = (
                f"HTTP/1.1 {status} {_REASONS.get(status, 'OK')}\r\nContent-Type: {ctype}\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            writer.write(head.encode() + (b"" if method == "HEAD" else body))
            await writer.drain()
        except (OSError, TimeoutError, UnicodeDecodeError):
            pass
        finally:
            writer.close()
