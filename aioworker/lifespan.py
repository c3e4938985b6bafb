"""Web-framework integration: open and close the producer connection with the app.

Works with FastAPI, Starlette or any ASGI framework that takes a lifespan context::

    from fastapi import FastAPI
    from aioworker.lifespan import lifespan

    app = FastAPI(lifespan=lifespan(worker))

The connection is checked at start-up, so a wrong Redis URL fails the deploy early
with a clear message instead of failing the first request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

__all__ = ("lifespan",)


def lifespan(
    worker: AbstractAsyncContextManager[object],
    inner: Callable[[Any], AbstractAsyncContextManager[None]] | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """A lifespan that connects ``worker``'s producer at start-up and closes it at the end.

    :param inner: the application's own lifespan, run inside this one.
    """

    @asynccontextmanager
    async def _lifespan(app: Any) -> AsyncIterator[None]:
        async with worker:
            if inner is None:
                yield
            else:
                async with inner(app):
                    yield

    return _lifespan
