"""Building the redis-py client from a URL and options: the one place that does it.

Forms of URL accepted (anything else is a :class:`~aioworker.errors.ConfigError`,
raised before any connection is tried)::

    redis://[[user]:password@]host[:port][/db][?option=value...]
    rediss://...                          TLS; ``ssl_ca_certs`` for a private CA
    unix://[[user]:password@]/path/to/socket[?db=n&password=...]
    redis+sentinel://[[user]:password@]host:port[,host:port...]/service_name[/db]
    rediss+sentinel://...                 the same, TLS to the primary

``user:password`` of a Sentinel URL authenticate at the primary; ``?sentinel_password=``
(and ``sentinel_username``) at the sentinels.  ``sentinels=[(host, port), ...]`` given
as an option makes a plain ``redis://[:password@]service_name[/db]`` URL a Sentinel one.

Single nodes and Sentinel primaries get a blocking pool (callers wait for a free
connection); the cluster client has none, so :class:`~aioworker.broker.Broker` bounds
its callers with a semaphore of the same size.  :func:`mask_url` is the form of a URL
every log line and error shows.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import ReadOnlyError

from .errors import ConfigError

__all__ = (
    "MAX_CONNECTIONS",
    "SCHEMES",
    "Client",
    "Target",
    "build_client",
    "close_client",
    "mask_text",
    "mask_url",
    "parse_url",
)

Client = aioredis.Redis | RedisCluster

#: Connections per Redis node (``redis_options={"max_connections": n}`` changes it).
MAX_CONNECTIONS = 512

SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "rediss+sentinel")

_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:@/]*):(?P<pw>[^/?#]*)@")
_QUERY_SECRET = re.compile(r"(?P<k>[?&](?:sentinel_)?password=)(?P<v>[^&#]*)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """The URL with every password (user info, ``?password=``, ``?sentinel_password=``)
    replaced by ``***``, for logs and errors; never raises."""
    masked = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url, count=1)
    return _QUERY_SECRET.sub(lambda m: f"{m['k']}***", masked)


def _secrets(url: str) -> list[str]:
    found: list[str] = []
    m = _USERINFO.match(url)
    if m and m["pw"]:
        found += [m["pw"], unquote(m["pw"])]
    for q in _QUERY_SECRET.finditer(url):
        if q["v"]:
            found += [q["v"], unquote(q["v"])]
    return [s for s in found if len(s) >= 3]


def mask_text(text: str, url: str) -> str:
    """``text`` (e.g. a redis-py error) with the URL masked and none of its passwords."""
    text = text.replace(url, mask_url(url))
    for secret in sorted(_secrets(url), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


@dataclass(frozen=True)
class Target:
    """What a URL names: a plain ``url`` for redis-py, or Sentinel's parts."""

    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    service: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False
    sentinel_kwargs: dict[str, Any] = field(default_factory=dict)


def _bad(url: str, why: str) -> ConfigError:
    return ConfigError(f"invalid Redis URL {mask_url(url)}: {why}")


def _host_port(url: str, item: str, default_port: int) -> tuple[str, int]:
    try:
        parts = urlsplit(f"//{item}")
        port = parts.port or default_port
    except ValueError as exc:
        raise _bad(url, str(exc)) from None
    if not parts.hostname:
        raise _bad(url, f"no host in {item!r}")
    return parts.hostname, port


def parse_url(url: str, sentinels: Sequence[tuple[str, int]] | None = None) -> Target:
    """Check a URL and say what it names.

    :param sentinels: ``(host, port)`` of sentinels; the URL's host is then the service.
    :raises ConfigError: for an unknown scheme, a bad port or host, a bad db number.
    """
    if not isinstance(url, str) or "://" not in url:
        raise _bad(str(url), "expected redis://, rediss://, unix:// or redis+sentinel://")
    scheme = url.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise _bad(url, f"unknown scheme {scheme}:// (use one of {', '.join(SCHEMES)})")
    if sentinels and "+sentinel" not in scheme:
        if scheme == "unix":
            raise _bad(url, "sentinels= needs a redis:// URL naming the service")
        hosts = ",".join(f"{h}:{p}" for h, p in sentinels)
        rest = url.split("://", 1)[1]
        info, _, hostpart = rest.rpartition("@")
        service, _, tail = hostpart.partition("/")
        url2 = f"{scheme}+sentinel://{info + '@' if info else ''}{hosts}/{service}"
        return parse_url(url2 + (f"/{tail}" if tail else ""))
    if "+sentinel" in scheme:
        return _parse_sentinel(url, scheme)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _bad(url, str(exc)) from None
    if scheme != "unix":
        if not parts.hostname:
            raise _bad(url, "no host")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise _bad(url, f"the database must be a number, got {path!r}")
        if port == 0:
            raise _bad(url, "port 0")
    elif not parts.path:
        raise _bad(url, "no socket path")
    return Target(url=url)


def _parse_sentinel(url: str, scheme: str) -> Target:
    rest = url.split("://", 1)[1]
    rest, _, query = rest.partition("?")
    info, _, hostpart = rest.rpartition("@")
    hosts, _, path = hostpart.partition("/")
    if not hosts:
        raise _bad(url, "no sentinel host")
    nodes = tuple(_host_port(url, h, 26379) for h in hosts.split(",") if h)
    service, _, db = path.strip("/").partition("/")
    if not service:
        raise _bad(url, "no service name (redis+sentinel://host:port/service_name[/db])")
    if db and not db.isdigit():
        raise _bad(url, f"the database must be a number, got {db!r}")
    user, _, password = info.partition(":") if ":" in info else (info, "", "")
    params = dict(parse_qsl(query))
    sentinel_kwargs: dict[str, Any] = {}
    if "sentinel_password" in params:
        sentinel_kwargs["password"] = params["sentinel_password"]
    if "sentinel_username" in params:
        sentinel_kwargs["username"] = params["sentinel_username"]
    return Target(
        url=url,
        sentinels=nodes,
        service=unquote(service),
        db=int(db or 0),
        username=unquote(user) or None,
        password=unquote(password) or None,
        tls=scheme.startswith("rediss"),
        sentinel_kwargs=sentinel_kwargs,
    )


class BlockingSentinelPool(SentinelConnectionPool, aioredis.BlockingConnectionPool):
    """A Sentinel pool whose callers wait for a free connection instead of failing.

    After a failover every pooled connection reconnects at once, and each asks the
    sentinels for the primary: one question at a time here, or hundreds of parallel
    connections overflow the sentinels' listen queue and are refused.
    """

    def __init__(self, service_name: str, sentinel_manager: Sentinel, **kwargs: Any) -> None:
        super().__init__(service_name, sentinel_manager, **kwargs)  # type: ignore[no-untyped-call]
        self._discovery = asyncio.Lock()

    async def get_master_address(self) -> Any:
        async with self._discovery:
            return await super().get_master_address()  # type: ignore[no-untyped-call]


def default_options() -> dict[str, Any]:
    # redis-py's default socket timeout (5 s) would cut off blocking waits of up to 5 s.
    # On Python 3.11 redis-py applies a socket timeout through asyncio.wait_for, which
    # can swallow a cancellation (a job interrupted by shutdown would run on), so there
    # the timeout is left off.
    return {
        "socket_connect_timeout": 5.0,
        "socket_timeout": 15.0 if sys.version_info >= (3, 12) else None,
        "health_check_interval": 15,
    }


def build_client(target: Target, *, cluster: bool, options: Mapping[str, Any]) -> Client:
    """A redis-py client for ``target`` (no connection made yet).

    :param cluster: the cluster client (not for Sentinel targets).
    :param options: redis-py options over :func:`default_options` (``max_connections``
        is per node).
    """
    opts = default_options()
    opts.update(options)
    # redis-py's pools fail a command when their 100 connections are in use; a worker
    # running hundreds of jobs that checkpoint or wait on results needs more, and should
    # wait for a free connection rather than fail
    max_connections = int(opts.pop("max_connections", MAX_CONNECTIONS))
    if target.sentinels:
        if cluster:
            raise ConfigError("a Sentinel URL names one primary: it cannot be a cluster")
        sentinel = Sentinel(
            list(target.sentinels),
            sentinel_kwargs={
                "socket_connect_timeout": opts["socket_connect_timeout"],
                **target.sentinel_kwargs,
            },
        )
        primary: aioredis.Redis = sentinel.master_for(
            target.service,
            redis_class=aioredis.Redis,
            connection_pool_class=BlockingSentinelPool,
            max_connections=max_connections,
            timeout=30,
            db=target.db,
            username=target.username,
            password=target.password,
            ssl=target.tls,
            **opts,
        )
        return primary
    if cluster:
        opts.pop("health_check_interval", None)
        return RedisCluster.from_url(target.url, max_connections=max_connections, **opts)
    # READONLY: the node behind the URL was demoted (a failover moved the primary, and the
    # DNS name or endpoint now points to the new one). The connection that got it is
    # closed, so the next try connects afresh instead of asking the old node for ever; a
    # demoted node wrote nothing, so one immediate retry is safe. Other errors are not
    # retried here.
    opts.setdefault("retry", Retry(NoBackoff(), 1, supported_errors=(ReadOnlyError,)))
    opts.setdefault("retry_on_error", [ReadOnlyError])
    pool = aioredis.BlockingConnectionPool.from_url(
        target.url, max_connections=max_connections, timeout=30, **opts
    )
    return aioredis.Redis.from_pool(pool)


async def close_client(client: Client) -> None:
    """Close a client from :func:`build_client` (with a Sentinel's own connections)."""
    pool = getattr(client, "connection_pool", None)
    await client.aclose()
    if isinstance(pool, BlockingSentinelPool):
        await pool.sentinel_manager.aclose()


def probe_client(target: Target, options: Mapping[str, Any]) -> aioredis.Redis:
    """A one-connection single-node client, to ask the server whether it is a cluster."""
    opts = default_options()
    opts.update(options)
    opts.pop("max_connections", None)
    return aioredis.Redis.from_url(target.url, **opts)
