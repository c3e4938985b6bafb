"""Amazon ECS task scale-in protection while the worker is busy.

ECS does not stop a protected task when a service scales in.  The ECS agent exposes
``PUT $ECS_AGENT_URI/task-protection/v1/state`` with a JSON body
``{"ProtectionEnabled": true, "ExpiresInMinutes": N}`` (and ``false`` to release).
:class:`EcsTaskProtection` turns it on when the worker becomes busy, renews it while the
worker stays busy, and turns it off when the worker is idle::

    protection = EcsTaskProtection(expires_in_minutes=60)
    worker = Worker(..., on_busy=[protection.on_busy], on_idle=[protection.on_idle])

Outside ECS (no ``ECS_AGENT_URI``) it does nothing.  Protection does not stop a deploy's
SIGTERM; the worker's shutdown drain handles that.
"""

from __future__ import annotations

import asyncio
import logging
import os
from urllib.parse import urlsplit

import orjson

from .supervisor import restarting

__all__ = ("EcsTaskProtection",)

log = logging.getLogger("aioworker.ecs")


async def http_put_json(url: str, body: dict[str, object], timeout_s: float = 5.0) -> int:
    """PUT a JSON body over plain HTTP/1.1 and return the status code.

    The ECS agent listens on a link-local plain-HTTP address, so a small client here
    avoids a dependency.

    :raises OSError: on connection failures; :raises TimeoutError: on timeout.
    """
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"only http:// URLs are supported, got {url!r}")
    data = orjson.dumps(body)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    async with asyncio.timeout(timeout_s):
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port or 80)
        try:
            writer.write(
                (
                    f"PUT {path} HTTP/1.1\r\nHost: {host}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
                ).encode()
                + data
            )
            await writer.drain()
            status_line = await reader.readline()
            await reader.read()  # drain the response until the server closes
        finally:
            writer.close()
    fields = status_line.split()
    if len(fields) < 2 or not fields[1].isdigit():
        raise OSError(f"bad HTTP response from {url}: {status_line[:80]!r}")
    return int(fields[1])


class EcsTaskProtection:
    """Busy/idle hooks that set the ECS task's scale-in protection.

    :param expires_in_minutes: how long one protection lasts if not renewed (so a hung
        worker cannot block scale-in for ever); renewed at half that while busy.
    :param agent_uri: the ECS agent URI; defaults to ``$ECS_AGENT_URI``.
    """

    def __init__(self, expires_in_minutes: int = 60, agent_uri: str | None = None) -> None:
        if not 1 <= expires_in_minutes <= 2880:
            raise ValueError("expires_in_minutes must be between 1 and 2880")
        self.expires_in_minutes = expires_in_minutes
        self.agent_uri = agent_uri or os.environ.get("ECS_AGENT_URI")
        self._renew: asyncio.Task[None] | None = None

    @property
    def url(self) -> str | None:
        if not self.agent_uri:
            return None
        return self.agent_uri.rstrip("/") + "/task-protection/v1/state"

    async def _set(self, enabled: bool) -> None:
        if self.url is None:
            return
        body: dict[str, object] = {"ProtectionEnabled": enabled}
        if enabled:
            body["ExpiresInMinutes"] = self.expires_in_minutes
        try:
            status = await http_put_json(self.url, body)
        except (OSError, TimeoutError, ValueError) as exc:
            log.warning("could not set ECS task protection to %s: %s", enabled, exc)
            return
        if status >= 300:
            log.warning("ECS agent answered %d when setting task protection to %s", status, enabled)
        else:
            log.info("ECS task scale-in protection %s", "on" if enabled else "off")

    async def on_busy(self) -> None:
        await self._set(True)
        if self._renew is None and self.url is not None:
            self._renew = restarting("ecs-protection", self._renew_loop)

    async def on_idle(self) -> None:
        if self._renew is not None:
            self._renew.cancel()
            await asyncio.gather(self._renew, return_exceptions=True)
            self._renew = None
        await self._set(False)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.expires_in_minutes * 30)
            await self._set(True)
