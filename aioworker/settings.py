"""``Settings``: the frozen snapshot of a worker's configuration that the run loop and the
features read, instead of reaching into the :class:`~aioworker.worker.Worker` itself.

``Worker`` keeps its attributes (the CLI may still change a port or the grace before a run);
``Worker.settings`` builds a new snapshot from them each time it is read, and a run takes one
at its start.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = ("Protect", "Settings")

#: Which running jobs make a worker busy (see :mod:`aioworker.hooks`).
Protect = Literal["any", "non_interruptible"]


def _frozen(m: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(m))


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """A worker's settings, in the units the Redis side uses (``*_ms``) or seconds (``*_s``).

    :param prefix: the key prefix.
    :param safe_url: the Redis URL with its secrets masked, for logs.
    :param lease_timeout_s: seconds after the last heartbeat before a lease expires.
    :param heartbeat_s: seconds between lease renewals (a quarter of the lease).
    :param result_ttl_ms: how long results and failures are kept.
    :param dead_max: most dead-lettered jobs kept per queue.
    :param dead_ttl_ms: how long dead-lettered jobs are kept.
    :param max_payload_bytes: the largest encoded argument payload accepted at enqueue.
    :param max_result_bytes: the largest encoded result stored.
    :param shutdown_grace_s: seconds running jobs may go on after SIGTERM.
    :param cancel_grace_s: seconds a cancelled job has to save a checkpoint.
    :param protect: which running jobs make the worker busy.
    :param health_port: port of ``/livez`` and ``/readyz``, or None.
    :param metrics_port: port of ``/metrics``, or None.
    :param loop_unhealthy_after_s: seconds a failing loop may go on before ``/livez`` is 503.
    :param loop_exit_after_s: seconds after which a failing loop stops the worker.
    :param queues: queue -> concurrency in one process.
    :param concurrency: optional process-wide cap.
    :param global_concurrency: queue -> most jobs running at once across all workers.
    """

    prefix: str
    safe_url: str
    lease_timeout_s: float
    heartbeat_s: float
    result_ttl_ms: int
    dead_max: int
    dead_ttl_ms: int
    max_payload_bytes: int
    max_result_bytes: int
    shutdown_grace_s: float
    cancel_grace_s: float
    protect: Protect = "any"
    health_port: int | None = None
    metrics_port: int | None = None
    loop_unhealthy_after_s: float = 60.0
    loop_exit_after_s: float = 300.0
    queues: Mapping[str, int] = field(default_factory=lambda: _frozen({"default": 100}))
    concurrency: int | None = None
    global_concurrency: Mapping[str, int] = field(default_factory=lambda: _frozen({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "queues", _frozen(self.queues))
        object.__setattr__(self, "global_concurrency", _frozen(self.global_concurrency))

    @property
    def lease_ms(self) -> int:
        """The lease in milliseconds, as the scripts take it."""
        return int(self.lease_timeout_s * 1000)
