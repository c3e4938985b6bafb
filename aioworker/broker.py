"""The one module that talks to Redis.

It opens the connection (a single node, or Redis/Valkey Cluster, detected at connect
time or forced with ``cluster=True``), runs the Lua scripts with EVALSHA and an EVAL
fallback, and offers the few plain reads and blocking waits the rest of the library
needs.  Every state change that touches more than one key goes through a script.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from .errors import BrokerUnavailable
from .keys import QueueKeys
from .redis_errors import RETRY_LATER_CLASSES, is_retry_later, translating
from .scripts import Arg, LuaScript, Scripts

__all__ = ("TRANSIENT_ERRORS", "Broker", "mask_url")

log = logging.getLogger("aioworker.broker")

#: Errors after which a call may succeed when repeated: connection lost, Redis restarting,
#: and the retry-later replies of :mod:`redis_errors` (READONLY, OOM, BUSY, ...; the
#: broker's calls raise those as BrokerBusy, a ConnectionError).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    *RETRY_LATER_CLASSES,
    ConnectionError,
    OSError,
)


#: Connections per Redis node (``redis_options={"max_connections": n}`` changes it).
MAX_CONNECTIONS = 512


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***``, for logs and errors."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


Client = aioredis.Redis | RedisCluster


class Broker:
    """A connection to Redis (single node or cluster) and the scripts that run on it.

    :param url: ``redis://`` or ``rediss://`` URL, with ``user:password@`` for ACL users.
    :param cluster: ``True`` to use the cluster client, ``False`` for a single node,
        ``None`` to ask the server at connect time.
    """

    def __init__(self, url: str, *, cluster: bool | None = None, **options: Any) -> None:
        self.url = url
        self._cluster = cluster
        self._options = options
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self.scripts = Scripts(self._run_script, self._run_after_wait)

    @property
    def is_cluster(self) -> bool:
        return isinstance(self._client, RedisCluster)

    async def connect(self) -> Client:
        """Open the connection once (safe to call many times).

        :raises BrokerUnavailable: if Redis cannot be reached.
        """
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                self._client = await self._open()
        return self._client

    async def _open(self) -> Client:
        # redis-py's default socket timeout (5 s) would cut off blocking waits of up to 5 s.
        # On Python 3.11 redis-py applies a socket timeout through asyncio.wait_for, which
        # can swallow a cancellation (a job interrupted by shutdown would run on), so there
        # the timeout is left off.
        opts: dict[str, Any] = {
            "socket_connect_timeout": 5.0,
            "socket_timeout": 15.0 if sys.version_info >= (3, 12) else None,
            "health_check_interval": 15,
        }
        opts.update(self._options)
        try:
            cluster = self._cluster
            if cluster is None:
                probe = aioredis.Redis.from_url(self.url, **opts)
                try:
                    info = await probe.info("cluster")
                finally:
                    await probe.aclose()
                cluster = bool(info.get("cluster_enabled"))
            # redis-py's pools fail a command when their 100 connections are in use; a
            # worker running hundreds of jobs that checkpoint or wait on results needs
            # more, and should wait for a free connection rather than fail
            max_connections = int(opts.pop("max_connections", MAX_CONNECTIONS))
            if cluster:
                opts.pop("health_check_interval", None)
                rc = RedisCluster.from_url(self.url, max_connections=max_connections, **opts)
                await rc.initialize()
                return rc
            pool = aioredis.BlockingConnectionPool.from_url(
                self.url, max_connections=max_connections, timeout=30, **opts
            )
            client = aioredis.Redis.from_pool(pool)
            await client.ping()
            return client
        except (RedisError, OSError) as exc:
            raise BrokerUnavailable(
                f"cannot connect to Redis at {mask_url(self.url)}: {exc}"
            ) from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    @translating
    async def _run_script(self, script: LuaScript, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        client = self._client or await self.connect()
        try:
            return await client.evalsha(script.sha, len(keys), *keys, *args)
        except NoScriptError:
            return await client.eval(script.source, len(keys), *keys, *args)

    @translating
    async def _run_after_wait(
        self,
        wait_keys: Sequence[str],
        timeout_s: float,
        script: LuaScript,
        keys: Sequence[str],
        args: Sequence[Arg],
    ) -> Any:
        """BLPOP on ``wait_keys``, then the script, pipelined on one connection.

        Redis holds a blocked client's later commands until the BLPOP returns, so the
        script runs on the server the moment a token arrives (or the wait times out),
        with no round trip in between: an idle worker starts a new job one round trip
        after its enqueue.  The BLPOP's token is consumed either way.
        """
        client = self._client or await self.connect()
        async with client.pipeline(transaction=False) as pipe:
            pipe.blpop(list(wait_keys), timeout=max(timeout_s, 0.001))
            pipe.evalsha(script.sha, len(keys), *keys, *args)
            _, reply = await pipe.execute(raise_on_error=False)
        if isinstance(reply, NoScriptError):
            await client.script_load(script.source)
            return await self._run_script(script, keys, args)
        if isinstance(reply, Exception):
            raise reply
        return reply

    @translating
    async def halt(self, key: str) -> None:
        """Wake this worker's pipelined wait on ``key`` so that its fetch leases nothing.

        Two tokens: the BLPOP takes one, and the fetch behind it sees the other.  The key
        expires after a minute, by when the worker is long gone.
        """
        client = self._client or await self.connect()
        async with client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, 1, 1)
            pipe.pexpire(key, 60_000)
            await pipe.execute()

    @translating
    async def unhalt(self, key: str) -> None:
        """Remove a halt list once the wait it woke has returned."""
        client = self._client or await self.connect()
        await client.delete(key)

    # -- plain reads and waits -------------------------------------------------------

    @translating
    async def wait_for_work(self, k: QueueKeys, timeout_s: float) -> bool:
        """Block until a wake token arrives for the queue, or the timeout passes.

        :returns: True if woken by a token.
        """
        client = self._client or await self.connect()
        reply = await client.blpop([k.wake], timeout=max(timeout_s, 0.001))
        return reply is not None

    @translating
    async def wait_token(self, key: str, timeout_s: float) -> bool:
        """Block until a token arrives on a wake list (e.g. a limiter's), or the timeout passes.

        :returns: True if woken by a token (which is consumed).
        """
        client = self._client or await self.connect()
        reply = await client.blpop([key], timeout=max(timeout_s, 0.001))
        return reply is not None

    async def wake(self, k: QueueKeys) -> None:
        """Push one wake token for the queue (errors are ignored: waits time out anyway)."""
        client = self._client or await self.connect()
        try:
            await client.rpush(k.wake, 1)
        except RedisError as exc:
            if not is_retry_later(exc):
                raise
        except TRANSIENT_ERRORS:
            pass

    @translating
    async def wait_done(self, k: QueueKeys, job_id: str, timeout_s: float) -> None:
        """Block until the job's done marker exists, or the timeout passes (non-destructive)."""
        client = self._client or await self.connect()
        key = k.done(job_id)
        await client.blmove(key, key, max(timeout_s, 0.001), "RIGHT", "LEFT")  # type: ignore[arg-type]

    @translating
    async def wait_marker(self, key: str, timeout_s: float) -> None:
        """Block until the list ``key`` holds an element, or the timeout passes.

        Non-destructive (the element is moved from the list onto itself), so every waiter
        wakes; used for the done marker of a batch.
        """
        client = self._client or await self.connect()
        await client.blmove(key, key, max(timeout_s, 0.001), "RIGHT", "LEFT")  # type: ignore[arg-type]

    @translating
    async def counts(self, k: QueueKeys) -> dict[str, int]:
        """Sizes of the queue's ready (with fair-share groups' ready jobs), scheduled,
        active and dead sets."""
        client = self._client or await self.connect()
        async with client.pipeline(transaction=False) as pipe:
            pipe.llen(k.ready)
            pipe.zcard(k.scheduled)
            pipe.zcard(k.active)
            pipe.zcard(k.dead)
            pipe.zcard(k.fair)
            ready, scheduled, active, dead, fair = await pipe.execute()
        return {
            "ready": int(ready) + int(fair),
            "scheduled": int(scheduled),
            "active": int(active),
            "dead": int(dead),
        }

    @translating
    async def dead_ids(self, k: QueueKeys, limit: int = 1000) -> list[str]:
        """Ids in the dead-letter set, oldest first."""
        client = self._client or await self.connect()
        ids = await client.zrange(k.dead, 0, limit - 1)
        return [i.decode() if isinstance(i, bytes) else str(i) for i in ids]

    @translating
    async def command_stats(self) -> dict[str, int]:
        """Calls per command name from ``INFO commandstats`` (summed over cluster nodes)."""
        client = self._client or await self.connect()
        raw: Any = await client.info("commandstats")
        totals: dict[str, int] = {}

        def add(section: dict[str, Any]) -> None:
            for key, value in section.items():
                if isinstance(value, dict) and key.startswith("cmdstat_"):
                    name = key[len("cmdstat_") :]
                    totals[name] = totals.get(name, 0) + int(value.get("calls", 0))
                elif isinstance(value, dict):
                    add(value)  # the cluster client answers per node

        add(raw)
        return totals

    @translating
    async def ping(self) -> bool:
        client = self._client or await self.connect()
        return bool(await client.ping())

    @translating
    async def redis_time_ms(self) -> int:
        client = self._client or await self.connect()
        if isinstance(client, RedisCluster):
            seconds, micros = await client.time(target_nodes=RedisCluster.RANDOM)
        else:
            seconds, micros = await client.time()
        return int(seconds) * 1000 + int(micros) // 1000
