"""The one module that talks to Redis.

It opens the connection (a single node, or Redis/Valkey Cluster, detected at connect
time or forced with ``cluster=True``), runs the Lua scripts with EVALSHA and an EVAL
fallback, and offers the few plain reads and blocking waits the rest of the library
needs.  Every state change that touches more than one key goes through a script.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoScriptError, RedisError

from .connect import (
    MAX_CONNECTIONS,
    Client,
    build_client,
    close_client,
    mask_text,
    mask_url,
    parse_url,
    probe_client,
)
from .errors import BrokerUnavailable
from .keys import QueueKeys
from .redis_errors import RETRY_LATER_CLASSES, is_retry_later, translating
from .reply import texts
from .scripts import Arg, LuaScript, Scripts
from .server_checks import ServerVersion, check_server, is_cluster

__all__ = ("MAX_CONNECTIONS", "MIN_BLOCK_S", "TRANSIENT_ERRORS", "Broker", "mask_url")

log = logging.getLogger("aioworker.broker")

#: The shortest blocking timeout sent to Redis: Redis 6.2 reads 0.001 s as "block for
#: ever" (fixed in 7.0), so no BLPOP/BLMOVE ever asks for less than this.
MIN_BLOCK_S = 0.01

#: Errors after which a call may succeed when repeated: connection lost, Redis restarting,
#: and the retry-later replies of :mod:`redis_errors` (READONLY, OOM, BUSY, ...; the
#: broker's calls raise those as BrokerBusy, a ConnectionError).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    *RETRY_LATER_CLASSES,
    ConnectionError,
    OSError,
)


class Broker:
    """A connection to Redis (single node or cluster) and the scripts that run on it.

    :param url: ``redis://`` or ``rediss://`` URL, with ``user:password@`` for ACL users.
    :param cluster: ``True`` to use the cluster client, ``False`` for a single node,
        ``None`` to ask the server at connect time.
    :param sentinels: ``(host, port)`` of Redis Sentinels; the URL's host is then the
        service name (see :mod:`aioworker.connect` for every URL form).
    """

    def __init__(
        self,
        url: str,
        *,
        cluster: bool | None = None,
        sentinels: Sequence[tuple[str, int]] | None = None,
        **options: Any,
    ) -> None:
        self.url = url
        self._cluster = cluster
        self._sentinels = list(sentinels or ())
        self._options = options
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        # redis-py's cluster client fails a command when a node's pool is full instead of
        # waiting: its callers wait here, at most max_connections at a time, each call
        # holding at most one connection per node
        self._slots: asyncio.Semaphore | None = None
        self.server: ServerVersion | None = None  # known once connected
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
                client = await self._open()
                if isinstance(client, RedisCluster):
                    size = int(self._options.get("max_connections", MAX_CONNECTIONS))
                    self._slots = asyncio.Semaphore(size)
                self._client = client
        return self._client

    @contextlib.asynccontextmanager
    async def _use(self) -> AsyncIterator[Client]:
        """The client, for one call (on a cluster, once a connection slot is free)."""
        client = self._client or await self.connect()
        slots = self._slots
        if slots is None:
            yield client
            return
        async with slots:
            yield client

    async def _open(self) -> Client:
        target = parse_url(self.url, self._sentinels)  # ConfigError before any connection
        try:
            cluster = self._cluster
            if cluster is None and not target.sentinels:
                probe = probe_client(target, self._options)
                try:
                    cluster = await is_cluster(probe)
                finally:
                    await probe.aclose()
            client = build_client(target, cluster=bool(cluster), options=self._options)
            try:
                if isinstance(client, RedisCluster):
                    await client.initialize()
                else:
                    await client.ping()
                self.server = await check_server(client)
            except BaseException:
                await close_client(client)
                raise
            return client
        except BrokerUnavailable:  # an OSError too: the start-up checks' own line
            raise
        except (RedisError, OSError) as exc:
            text = mask_text(str(exc), self.url)
            raise BrokerUnavailable(
                f"cannot connect to Redis at {mask_url(self.url)}: {text}"
            ) from exc

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await close_client(client)

    @translating
    async def _run_script(self, script: LuaScript, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        async with self._use() as client:
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
        async with self._use() as client:
            async with client.pipeline(transaction=False) as pipe:
                pipe.blpop(list(wait_keys), timeout=max(timeout_s, MIN_BLOCK_S))
                pipe.evalsha(script.sha, len(keys), *keys, *args)
                _, reply = await pipe.execute(raise_on_error=False)
            if isinstance(reply, NoScriptError):
                await client.script_load(script.source)
        if isinstance(reply, NoScriptError):  # the slot is free again: no nested acquire
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
        async with self._use() as client, client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, 1, 1)
            pipe.pexpire(key, 60_000)
            await pipe.execute()

    @translating
    async def unhalt(self, key: str) -> None:
        """Remove a halt list once the wait it woke has returned."""
        async with self._use() as client:
            await client.delete(key)

    # -- plain reads and waits -------------------------------------------------------

    @translating
    async def wait_for_work(self, k: QueueKeys, timeout_s: float) -> bool:
        """Block until a wake token arrives for the queue, or the timeout passes.

        :returns: True if woken by a token.
        """
        async with self._use() as client:
            reply = await client.blpop([k.wake], timeout=max(timeout_s, MIN_BLOCK_S))
            return reply is not None

    @translating
    async def wait_token(self, key: str, timeout_s: float) -> bool:
        """Block until a token arrives on a wake list (e.g. a limiter's), or the timeout passes.

        :returns: True if woken by a token (which is consumed).
        """
        async with self._use() as client:
            reply = await client.blpop([key], timeout=max(timeout_s, MIN_BLOCK_S))
            return reply is not None

    async def wake(self, k: QueueKeys) -> None:
        """Push one wake token for the queue (errors are ignored: waits time out anyway)."""
        async with self._use() as client:
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
        async with self._use() as client:
            key = k.done(job_id)
            await client.blmove(key, key, max(timeout_s, MIN_BLOCK_S), "RIGHT", "LEFT")  # type: ignore[arg-type]

    @translating
    async def wait_marker(self, key: str, timeout_s: float) -> None:
        """Block until the list ``key`` holds an element, or the timeout passes.

        Non-destructive (the element is moved from the list onto itself), so every waiter
        wakes; used for the done marker of a batch.
        """
        async with self._use() as client:
            await client.blmove(key, key, max(timeout_s, MIN_BLOCK_S), "RIGHT", "LEFT")  # type: ignore[arg-type]

    @translating
    async def counts(self, k: QueueKeys) -> dict[str, int]:
        """Sizes of the queue's ready (with fair-share groups' ready jobs), scheduled,
        active and dead sets."""
        async with self._use() as client:
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
        async with self._use() as client:
            ids = await client.zrange(k.dead, 0, limit - 1)
            return texts(ids)

    @translating
    async def command_stats(self) -> dict[str, int]:
        """Calls per command name from ``INFO commandstats`` (summed over cluster nodes)."""
        async with self._use() as client:
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
        async with self._use() as client:
            return bool(await client.ping())

    @translating
    async def redis_time_ms(self) -> int:
        async with self._use() as client:
            if isinstance(client, RedisCluster):
                seconds, micros = await client.time(target_nodes=RedisCluster.RANDOM)
            else:
                seconds, micros = await client.time()
            return int(seconds) * 1000 + int(micros) // 1000
