"""Redis key names: the only place they are built.

Every key that belongs to a queue carries the hash tag ``{<queue>}`` so that all of a
queue's keys live in one Redis Cluster slot and every Lua script touches one slot.
Scripts receive every key they touch in ``KEYS[]``; they never build key names.

Key schema (``P`` is the prefix, ``aioworker`` by default; ``q`` the queue name)::

    P:{q}:ready          LIST    job ids ready to run, FIFO (enqueue RPUSH, fetch LPOP,
                                 interrupted jobs LPUSH to the front).  ``LLEN`` is the
                                 queue depth: point KEDA's redis list scaler at this key.
    P:{q}:scheduled      ZSET    job id -> run_at_ms (delayed jobs and retries)
    P:{q}:active         ZSET    job id -> lease deadline in ms (Redis TIME); a job whose
                                 deadline has passed belongs to a dead worker
    P:{q}:dead           ZSET    job id -> died_at_ms (dead letters, trimmed by count and age)
    P:{q}:jobs           HASH    job id -> "<enqueued_ms>|<payload json>"
    P:{q}:attempts       HASH    job id -> attempts started
    P:{q}:leases         HASH    job id -> lease token of the worker running it (fencing)
    P:{q}:state          HASH    job id -> last checkpoint json
    P:{q}:errors         HASH    job id -> last error json
    P:{q}:wake           LIST    wake-up tokens for idle workers blocked in BLPOP
    P:{q}:paused         STRING  present while the queue is paused
    P:{q}:result:<id>    STRING  "<finished_ms>|<result json>", expires after the result TTL
    P:{q}:done:<id>      LIST    a short-lived marker that wakes result waiters

Keys not bound to one queue carry their own hash tag, e.g. ``P:{workers}``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ("QueueKeys", "validate_name")

_FORBIDDEN = set("{}\r\n ")


def validate_name(kind: str, name: str) -> str:
    """Check a queue or prefix name for characters that would break the key schema.

    :param kind: what the name is, for the error message.
    :param name: the name to check.
    :returns: the name unchanged.
    :raises ValueError: if it is empty, too long or holds a brace, space or newline.
    """
    if not name or len(name) > 200 or _FORBIDDEN & set(name):
        raise ValueError(
            f"invalid {kind} name {name!r}: use 1-200 characters without braces, spaces or newlines"
        )
    return name


@dataclass(frozen=True, slots=True)
class QueueKeys:
    """All key names of one queue."""

    prefix: str
    queue: str

    @property
    def base(self) -> str:
        return f"{self.prefix}:{{{self.queue}}}"

    @property
    def ready(self) -> str:
        return f"{self.base}:ready"

    @property
    def scheduled(self) -> str:
        return f"{self.base}:scheduled"

    @property
    def active(self) -> str:
        return f"{self.base}:active"

    @property
    def dead(self) -> str:
        return f"{self.base}:dead"

    @property
    def jobs(self) -> str:
        return f"{self.base}:jobs"

    @property
    def attempts(self) -> str:
        return f"{self.base}:attempts"

    @property
    def leases(self) -> str:
        return f"{self.base}:leases"

    @property
    def state(self) -> str:
        return f"{self.base}:state"

    @property
    def errors(self) -> str:
        return f"{self.base}:errors"

    @property
    def wake(self) -> str:
        return f"{self.base}:wake"

    @property
    def paused(self) -> str:
        return f"{self.base}:paused"

    def result(self, job_id: str) -> str:
        return f"{self.base}:result:{job_id}"

    def done(self, job_id: str) -> str:
        return f"{self.base}:done:{job_id}"
