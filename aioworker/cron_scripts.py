"""Typed wrappers of the cron and leadership scripts (``lua/cron_*.lua``,
``lua/leader_*.lua``), one per script, same names.

Each wrapper builds ``KEYS``/``ARGV`` exactly as the script's header documents and turns
the reply into Python values; running goes through :meth:`aioworker.scripts.Scripts.run`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .keys import LeaderKeys, QueueKeys
from .reply import text
from .scripts import Scripts

__all__ = (
    "StateReply",
    "TickReply",
    "cron_state",
    "cron_tick",
    "leader_acquire",
    "leader_release",
    "leader_renew",
)


@dataclass(frozen=True, slots=True)
class TickReply:
    """Reply of ``lua/cron_tick.lua`` (see its header for the codes)."""

    code: int
    now_ms: int
    marker_ms: int


@dataclass(frozen=True, slots=True)
class StateReply:
    """Reply of ``lua/cron_state.lua``: -1 / '' where a value is absent."""

    now_ms: int
    marker_ms: int
    paused_ms: int
    job_id: str


async def cron_tick(
    scripts: Scripts,
    k: QueueKeys,
    name: str,
    tick_ms: int,
    marker_ms: int,
    job_id: str,
    payload: bytes,
) -> TickReply:
    """``lua/cron_tick.lua``: enqueue (or skip, with ``job_id=""``) one tick."""
    keys = [k.cron(name), k.ready, k.jobs, k.wake, k.result(job_id or "-")]
    code, now, marker = await scripts.run("cron_tick", keys, [tick_ms, marker_ms, job_id, payload])
    return TickReply(int(code), int(now), int(marker))


async def cron_state(scripts: Scripts, k: QueueKeys, name: str, op: str) -> StateReply:
    """``lua/cron_state.lua``: ``get``, ``init``, ``pause`` or ``resume`` one schedule."""
    now, marker, paused, job = await scripts.run("cron_state", [k.cron(name)], [op])
    return StateReply(int(now), int(marker), int(paused), text(job))


async def leader_acquire(
    scripts: Scripts, k: LeaderKeys, token: str, ttl_ms: int
) -> tuple[bool, int, int]:
    """``lua/leader_acquire.lua``: returns (held, term, ms left on the lease)."""
    held, term, left = await scripts.run("leader_acquire", [k.lease, k.term], [token, ttl_ms])
    return bool(int(held)), int(term), int(left)


async def leader_renew(scripts: Scripts, k: LeaderKeys, token: str, ttl_ms: int) -> bool:
    """``lua/leader_renew.lua``: True if the token still held the lease and renewed it."""
    return bool(int(await scripts.run("leader_renew", [k.lease], [token, ttl_ms])))


async def leader_release(scripts: Scripts, k: LeaderKeys, token: str) -> bool:
    """``lua/leader_release.lua``: True if the token held the lease and deleted it."""
    return bool(int(await scripts.run("leader_release", [k.lease], [token])))
