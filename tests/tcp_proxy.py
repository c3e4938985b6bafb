"""A loopback TCP proxy whose upstream a test switches, as a DNS name or a managed
service's endpoint moves to a new primary after a failover.

Each client connection gets its own upstream connection to the upstream of the moment it
was accepted; :meth:`TcpProxy.switch` points new connections elsewhere and, with
``drop=True``, closes the existing ones as an endpoint that moves usually does.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.redis_procs import HOST, pick_free_port

__all__ = ("TcpProxy",)


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<upstream>``.

    :param upstream: the port connections go to until :meth:`switch`.
    """

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = pick_free_port()
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0 through the proxy."""
        return f"redis://{HOST}:{self.port}/0"

    async def start(self) -> None:
        """Listen on :attr:`port`."""
        self._server = await asyncio.start_server(self._accept, HOST, self.port)

    def switch(self, upstream: int, *, drop: bool) -> None:
        """Send new connections to ``upstream``; with ``drop``, close the open ones."""
        self.upstream = upstream
        if drop:
            for pair in list(self._pairs):
                for writer in pair:
                    writer.close()

    async def close(self) -> None:
        """Stop listening and close every connection."""
        if self._server is not None:
            self._server.close()
        self.switch(self.upstream, drop=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, self.upstream)
        except OSError:
            writer.close()
            return
        pair = (writer, up_writer)
        self._pairs.add(pair)
        pumps = [
            asyncio.create_task(self._pump(reader, up_writer)),
            asyncio.create_task(self._pump(up_reader, writer)),
        ]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._pairs.discard(pair)
            for w in pair:
                w.close()
            for task in pumps:
                task.cancel()
                self._tasks.discard(task)

    @staticmethod
    async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
