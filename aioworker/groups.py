"""Fair sharing between groups (tenants) within a queue.

A job carries a group key with ``.options(group="company-42")``, or from the task's
``group=`` (a string, or a function of the job's arguments).  Within a queue, workers
then take work round-robin across groups, so a company with 50,000 queued jobs does not
delay one with 5.  Exact semantics (the fetch script, ``lua/fetch.lua``, holds them):

- Each ready grouped job gets a virtual position: the next position of its group, but
  never below the queue's *floor*, the highest position served so far.  Jobs of one
  group keep their order (positions 0, 1, 2, ...); a group that arrives while another
  has a backlog starts at the floor, level with it, instead of behind it.
- Each lease takes the job with the lowest position.  Ungrouped jobs (the plain ready
  list) count as one more group; so do jobs put back at the front of the queue (a
  recovered lease, a shutdown requeue, an immediate retry).  Equal positions are served
  in the order of their job ids.
- A delayed or retried grouped job takes its group's next position when it becomes due.
- Optional concurrency cap per group (:meth:`Groups.set_concurrency`), fleet-wide and
  exact: a job of a group at its cap is passed over (it keeps its place) until one of the
  group's running jobs ends; idle workers look again every 250 ms while jobs wait so.
- Optional rate limit per group: :class:`GroupRateLimit`, a gate that checks each job
  against the limiter keyed by its group and defers the ones over the limit.
- Progress per group (:meth:`Groups.progress`): jobs enqueued, waiting, running,
  completed and dead-lettered, counted by the scripts that move the jobs.

Fairness applies within one queue; across queues, the worker's queue weights apply.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .arity import pieces
from .errors import ConfigError, EnqueueError
from .job import JobRecord
from .limit_gates import LimitGate
from .limits import Limiter
from .reply import texts
from .timeunits import Seconds

if TYPE_CHECKING:
    from .host import Host

__all__ = ("GroupKey", "GroupProgress", "GroupRateLimit", "Groups", "resolve_group")

GroupKey = str | Callable[..., str]
"""A task's group: a fixed name, or a function of the job's arguments returning one."""

MAX_GROUP_CHARS = 200


def check_group(group: object) -> str:
    """Check a group name.

    :raises ConfigError: if it is not a string of 1 to 200 characters.
    """
    if not isinstance(group, str) or not 0 < len(group) <= MAX_GROUP_CHARS:
        raise ConfigError(
            f"a group must be a string of 1-{MAX_GROUP_CHARS} characters, got {group!r}"
        )
    return group


def resolve_group(key: GroupKey, task: str, args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """The group of one call of a task.

    :raises EnqueueError: if the key function fails or returns something else than a name.
    """
    if isinstance(key, str):
        return key
    try:
        group = key(*args, **kwargs)
    except Exception as exc:
        raise EnqueueError(
            f"group function of task {task!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    try:
        return check_group(group)
    except ConfigError as exc:
        raise EnqueueError(f"group function of task {task!r}: {exc}") from None


@dataclass(frozen=True, slots=True)
class GroupProgress:
    """Counts of one group's jobs in one queue.

    :ivar enqueued: jobs created since the counts were last reset.
    :ivar waiting: queued, scheduled or waiting for a retry.
    :ivar running: leased to a worker now.
    :ivar done: completed.
    :ivar dead: dead-lettered (less those revived).
    :ivar concurrency: the group's own cap (None: the queue's, see :meth:`Groups.get_concurrency`).
    """

    group: str
    enqueued: int
    waiting: int
    running: int
    done: int
    dead: int
    concurrency: int | None = None


class Groups:
    """Caps and progress of the fair-share groups of one queue.

    :param host: the worker (its Redis and prefix).
    :param queue: the queue.
    """

    def __init__(self, host: Host, queue: str = "default") -> None:
        self._host = host
        self.queue = queue

    def __repr__(self) -> str:
        return f"<Groups of queue {self.queue}>"

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        client = self._host.client
        await client.broker.connect()
        return await client.broker.scripts.run(name, keys, args)

    async def set_concurrency(self, limit: int | None, group: str | None = None) -> None:
        """Cap how many jobs of a group run at once over all workers.

        :param limit: the cap, or None to remove it.
        :param group: the group; None sets the cap of every group without a cap of its own.
        :raises ConfigError: for a cap below 1 or a bad group name.
        """
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ConfigError(f"group concurrency must be at least 1, got {limit!r}")
        field = "cap" if group is None else f"c:{check_group(group)}"
        k = self._host.client.keys(self.queue)
        await self._run("group_cap", [k.groups, k.wake], [field, limit or 0])

    async def get_concurrency(self, group: str | None = None) -> int | None:
        """The cap of a group (its own, else the queue's), or of every group (None: no cap)."""
        k = self._host.client.keys(self.queue)
        names = [] if group is None else [check_group(group)]
        reply = await self._run("group_stats", [k.groups], names)
        cap = int(reply[0])
        if group is not None and int(reply[1][4]) > 0:
            cap = int(reply[1][4])
        return cap or None

    async def progress(self, group: str) -> GroupProgress:
        """The counts of one group (all zero for a group never seen)."""
        (one,) = (await self.progress_many([group])).values()
        return one

    async def progress_many(self, groups: Sequence[str]) -> dict[str, GroupProgress]:
        """The counts of several groups, read atomically (per call of up to about 4,000
        groups: more are read in several calls)."""
        k = self._host.client.keys(self.queue)
        names = [check_group(g) for g in groups]
        rows: list[Any] = []
        for piece in pieces(names, 1, 1):  # the groups hash; one name each
            rows += (await self._run("group_stats", [k.groups], list(piece)))[1:]
        out: dict[str, GroupProgress] = {}
        for name, row in zip(names, rows, strict=True):
            enqueued, running, done, dead, cap = (int(x) for x in row)
            waiting = max(enqueued - running - done - dead, 0)
            out[name] = GroupProgress(
                name, enqueued, waiting, max(running, 0), done, dead, cap or None
            )
        return out

    async def all(self) -> dict[str, GroupProgress]:
        """The counts of every group the queue has counts for."""
        k = self._host.client.keys(self.queue)
        names: list[str] = []
        cursor: bytes | str | int = 0
        while True:
            cursor, page = await self._run("group_scan", [k.groups], [cursor, 500])
            names += texts(page)
            if int(cursor) == 0:
                break
        return await self.progress_many(sorted(set(names)))

    async def reset(self, group: str) -> None:
        """Forget a group's completed and dead counts (waiting and running stay).

        A group with nothing left waiting or running is forgotten altogether.
        """
        k = self._host.client.keys(self.queue)
        await self._run("group_reset", [k.groups], [check_group(group)])


class GroupRateLimit(LimitGate):
    """A rate limit per group: each job passes the limiter keyed by its group
    (``limiter.key(group)``); jobs over it are deferred without using an attempt, and
    ungrouped jobs pass.  Attach it with ``worker.task(gates=[GroupRateLimit(...)])``.

    :param limiter: any limiter of :mod:`aioworker.limits`, bound to the worker
        (``Window("erp", 10, per=1, on=worker)``).
    :param max_wait: as for ``rate_max_wait``: seconds a job may be refused in one attempt
        before the attempt fails with ``RateLimited``.
    """

    def __init__(self, limiter: Limiter, *, max_wait: Seconds | None = None) -> None:
        super().__init__(limiter, max_wait=max_wait)

    def __repr__(self) -> str:
        return f"<GroupRateLimit {self.limiter!r}>"

    def limiter_for(self, job: JobRecord) -> Limiter | None:
        group = job.payload.get("g")
        return None if group is None else self.limiter.key(str(group))
