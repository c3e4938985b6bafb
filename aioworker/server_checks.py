"""What aioworker asks of the Redis server, checked once when a broker connects.

- **Version**: Redis 6.2+ or Valkey 7.2+ (the scripts use ``LPOP key count``,
  ``HRANDFIELD``, ``ZRANGE ... REV`` and results wait with ``BLMOVE``, all 6.2).  Read
  from ``INFO server``; where the ACL user may not run INFO, from ``HELLO``'s reply.
  An older server is refused with one line (:class:`~aioworker.errors.UnsupportedServer`).
- **Permissions**: the commands every producer and worker runs without a key
  (``EVALSHA``, ``EVAL``, ``SCRIPT LOAD``); a refusal names the command
  (:class:`~aioworker.errors.RedisAccessDenied`).
- **Eviction**: a warning when ``maxmemory-policy`` is not ``noeviction`` (Redis may
  then drop leases and locks); skipped quietly where ``CONFIG`` is not allowed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import NoPermissionError, NoScriptError, RedisError, ResponseError

from .connect import Client
from .errors import RedisAccessDenied, UnsupportedServer

__all__ = (
    "MIN_VERSIONS",
    "ServerVersion",
    "check_server",
    "check_version",
    "is_cluster",
    "parse_version",
)

log = logging.getLogger("aioworker.broker")

#: The oldest supported release of each server.
MIN_VERSIONS: dict[str, tuple[int, int]] = {"redis": (6, 2), "valkey": (7, 2)}
_NAMES = {"redis": "Redis", "valkey": "Valkey"}
#: A script that touches nothing: its SHA-1 tells whether EVALSHA is allowed.
_PROBE = "return 1"
_PROBE_SHA = "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"


@dataclass(frozen=True)
class ServerVersion:
    """A server's name (``redis`` or ``valkey``) and version."""

    name: str
    version: str

    @property
    def numbers(self) -> tuple[int, ...]:
        return tuple(int(n) for n in re.findall(r"\d+", self.version)[:3])

    def __str__(self) -> str:
        return f"{_NAMES.get(self.name, self.name)} {self.version}"


def parse_version(info: dict[str, Any]) -> ServerVersion:
    """The server and version in an ``INFO server`` or ``HELLO`` reply (keys decoded)."""
    name = str(info.get("server_name") or info.get("server") or "redis").lower()
    if "valkey_version" in info:
        return ServerVersion("valkey", str(info["valkey_version"]))
    version = info.get("redis_version") or info.get("version") or "0"
    return ServerVersion("valkey" if name == "valkey" else "redis", str(version))


def check_version(server: ServerVersion) -> None:
    """:raises UnsupportedServer: when the server is older than :data:`MIN_VERSIONS`."""
    need = MIN_VERSIONS.get(server.name, MIN_VERSIONS["redis"])
    if server.numbers[:2] < need:
        raise UnsupportedServer(
            f"{server} is too old: aioworker needs {need[0]}.{need[1]} or newer"
            + ("" if server.name == "valkey" else " (or Valkey 7.2+)")
        )


def _decoded(reply: Any) -> dict[str, Any]:
    def text(v: Any) -> Any:
        return v.decode() if isinstance(v, bytes) else v

    if isinstance(reply, dict):
        return {str(text(k)): text(v) for k, v in reply.items()}
    if isinstance(reply, list):  # RESP2: a flat list of names and values
        return {str(text(reply[i])): text(reply[i + 1]) for i in range(0, len(reply) - 1, 2)}
    return {}


async def is_cluster(client: Client) -> bool:
    """Whether a single-node client talks to a cluster node (``INFO cluster``, or where
    INFO is not allowed, the ``mode`` in ``HELLO``'s reply)."""
    try:
        info = await client.info("cluster")
        return bool(info.get("cluster_enabled"))
    except NoPermissionError:
        hello = _decoded(await client.execute_command("HELLO"))
        return hello.get("mode") == "cluster"


async def _version(client: Client) -> ServerVersion:
    kw: dict[str, Any] = {}
    if isinstance(client, RedisCluster):
        kw["target_nodes"] = RedisCluster.RANDOM
    try:
        info = await client.info("server", **kw)
        return parse_version(_decoded(info))
    except NoPermissionError:
        hello = await client.execute_command("HELLO", **kw)
        return parse_version(_decoded(hello))


def _denied(command: str, exc: BaseException) -> RedisAccessDenied:
    return RedisAccessDenied(
        f"the Redis user may not run {command} ({exc}); aioworker needs it: see the ACL "
        "rules in the README's 'Production Redis'"
    )


async def _permissions(client: Client) -> None:
    kw: dict[str, Any] = {}
    if isinstance(client, RedisCluster):
        kw["target_nodes"] = RedisCluster.RANDOM
    try:
        await client.execute_command("EVALSHA", _PROBE_SHA, 0, **kw)
    except NoScriptError:
        pass
    except NoPermissionError as exc:
        raise _denied("EVALSHA", exc) from exc
    try:
        await client.execute_command("EVAL", _PROBE, 0, **kw)
    except NoPermissionError as exc:
        raise _denied("EVAL", exc) from exc
    try:
        await client.execute_command("SCRIPT", "LOAD", _PROBE, **kw)
    except NoPermissionError as exc:
        raise _denied("SCRIPT LOAD", exc) from exc


async def _eviction(client: Client) -> None:
    kw: dict[str, Any] = {}
    if isinstance(client, RedisCluster):
        kw["target_nodes"] = RedisCluster.RANDOM
    try:
        reply = await client.config_get("maxmemory-policy", **kw)
    except (ResponseError, NoPermissionError):
        return  # CONFIG not allowed (managed services, ACL users): nothing to say
    policy = _decoded(reply).get("maxmemory-policy")
    if policy and policy != "noeviction":
        log.warning(
            "Redis maxmemory-policy is %s: under memory pressure Redis may evict job "
            "leases, locks and queued jobs; set it to noeviction",
            policy,
        )


async def check_server(client: Client) -> ServerVersion:
    """Refuse a server aioworker cannot use, warn about one that may lose data.

    :raises UnsupportedServer: for a server too old.
    :raises RedisAccessDenied: when the user may not run a script command.
    """
    try:
        server = await _version(client)
    except NoPermissionError:
        server = ServerVersion("redis", "")  # neither INFO nor HELLO: the scripts will tell
    except ResponseError:  # HELLO unknown: older than Redis 6
        raise UnsupportedServer(
            "Redis older than 6.0 is too old: aioworker needs 6.2 or newer"
        ) from None
    if server.version:
        check_version(server)
    await _permissions(client)
    try:
        await _eviction(client)
    except RedisError:  # pragma: no cover - a warning is not worth failing start-up
        log.debug("could not read maxmemory-policy", exc_info=True)
    return server
