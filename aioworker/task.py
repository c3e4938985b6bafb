"""Tasks: a registered ``async def`` plus its policy, and typed enqueueing of it."""

from __future__ import annotations

import inspect
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Protocol, TypeVar

from .backoff import Backoff
from .bounds import check_at, check_job_id, check_retries, check_seconds
from .errors import EnqueueError
from .groups import GroupKey, check_group, resolve_group
from .job import JobSpec
from .keys import validate_name
from .timeunits import Seconds, to_ms
from .unique import UniquePolicy, as_policy, resolve

if TYPE_CHECKING:
    from .client import Client
    from .context import JobContext
    from .extensions import Gate
    from .handle import JobHandle

__all__ = ("EnqueueOptions", "Task", "TaskOwner", "TaskRegistry")

P = ParamSpec("P")
R = TypeVar("R")


class TaskOwner(Protocol):
    """What a task reaches of the worker it is registered on: the client it enqueues with."""

    @property
    def client(self) -> Client: ...


class TaskRegistry(Protocol):
    """An app's registered tasks by name (a :class:`~aioworker.worker.Worker` is one)."""

    @property
    def tasks(self) -> Mapping[str, Task[Any, Any]]: ...


@dataclass(frozen=True, slots=True)
class EnqueueOptions:
    """Per-enqueue overrides, kept apart from the task's own arguments."""

    job_id: str | None = None
    delay_ms: int = 0
    at_ms: int = 0
    queue: str | None = None
    retries: int | None = None
    timeout_s: float | None = None
    unique: UniquePolicy | None = None
    group: str | None = None


class Task(Generic[P, R]):
    """A registered job function.

    Call :meth:`enqueue` with the function's own arguments (minus the context); use
    :meth:`options` for enqueue options so they never collide with those arguments::

        await send_email.enqueue("a@b.c", subject="hi")
        await send_email.options(delay=30, job_id="welcome-42").enqueue("a@b.c", subject="hi")
    """

    def __init__(
        self,
        worker: TaskOwner,
        fn: Callable[Concatenate[JobContext, P], Awaitable[R]],
        *,
        name: str,
        queue: str,
        retries: int,
        timeout_s: float | None,
        backoff: Backoff,
        interruptible: bool = True,
        gates: Sequence[Gate] = (),
        opts: EnqueueOptions | None = None,
        unique: UniquePolicy | None = None,
        group: GroupKey | None = None,
    ) -> None:
        self.worker = worker
        self.fn = fn
        self.name = name
        self.queue = queue
        self.retries = retries
        self.timeout_s = timeout_s
        self.backoff = backoff
        self.interruptible = interruptible
        self.gates: list[Gate] = list(gates)
        self.signature = inspect.signature(fn)
        self._arity = positional_arity(self.signature)
        self._opts = opts or EnqueueOptions()
        self.unique = unique
        self.group = group

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue}>"

    async def __call__(self, ctx: JobContext, *args: P.args, **kwargs: P.kwargs) -> R:
        """Call the function directly (no queue), e.g. from a test."""
        return await self.fn(ctx, *args, **kwargs)

    def options(
        self,
        *,
        job_id: str | None = None,
        delay: Seconds | None = None,
        at: datetime | None = None,
        queue: str | None = None,
        retries: int | None = None,
        timeout: Seconds | None = None,
        unique: UniquePolicy | str | None = None,
        group: str | None = None,
    ) -> Task[P, R]:
        """The same task with enqueue options set.

        ``delay``, ``timeout`` and ``at`` are at most 100 years away and ``retries`` at most
        10,000; a value that is NaN, infinite, negative or beyond the bounds of
        :mod:`aioworker.bounds` raises :class:`EnqueueError` naming the option.

        :param job_id: a chosen id; enqueueing an id that exists returns the existing job
            (1-256 printable characters; :class:`EnqueueError` otherwise).
        :param delay: run no earlier than this many seconds from now (Redis time).
        :param at: run no earlier than this moment.
        :param queue: enqueue to another queue than the task's own (1-200 printable
            characters, no braces or whitespace; :class:`ConfigError` otherwise).
        :param retries: override the task's retries for this job (0 = never retried).
        :param timeout: override the task's timeout for this job (more than 0 s).
        :param unique: a unique, throttle or debounce policy for this job, instead of the
            task's (see :mod:`aioworker.unique`).
        :param group: the job's fair-share group, instead of the task's (see
            :mod:`aioworker.groups`).
        """
        if delay is not None and at is not None:
            raise ValueError("give either delay or at, not both")
        o = self._opts
        opts = EnqueueOptions(
            job_id=check_job_id(job_id) if job_id is not None else o.job_id,
            delay_ms=to_ms(check_seconds(delay, "delay")) if delay is not None else o.delay_ms,
            at_ms=check_at(at) if at is not None else o.at_ms,
            queue=validate_name("queue", queue) if queue is not None else o.queue,
            retries=check_retries(retries) if retries is not None else o.retries,
            timeout_s=(
                check_seconds(timeout, "timeout", positive=True)
                if timeout is not None
                else o.timeout_s
            ),
            unique=as_policy(unique) if unique is not None else o.unique,
            group=check_group(group) if group is not None else o.group,
        )
        # a copy of this task with other options (cheap: no signature to inspect again,
        # as a bulk enqueue may call options() once per job)
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.gates = list(self.gates)
        clone._opts = opts
        return clone

    def call(self, *args: P.args, **kwargs: P.kwargs) -> JobSpec:
        """A job spec for :meth:`Worker.enqueue_many` (nothing is sent yet).

        :raises EnqueueError: if the arguments do not fit the function's signature, or the
            task's group or unique key cannot be computed from them.
        """
        arity = self._arity
        if kwargs or arity is None or not arity[0] <= len(args) <= arity[1]:
            try:
                self.signature.bind(None, *args, **kwargs)
            except TypeError as exc:
                raise EnqueueError(f"bad arguments for task {self.name!r}: {exc}") from exc
        o = self._opts
        group = o.group
        if group is None and self.group is not None:
            group = resolve_group(self.group, self.name, args, kwargs)
        policy = o.unique if o.unique is not None else self.unique
        unique = None
        delay_ms = o.delay_ms
        if policy is not None:
            unique = resolve(policy, self.name, self.signature, args, kwargs)
            if unique.mode == "debounce":
                if o.delay_ms or o.at_ms:
                    raise EnqueueError(
                        f"task {self.name!r}: a debounced job runs its window after the last "
                        "enqueue; it takes no delay or run time"
                    )
                delay_ms = unique.delay_ms
        return JobSpec(
            task=self.name,
            queue=o.queue or self.queue,
            args=args,
            kwargs=kwargs,
            job_id=o.job_id,
            delay_ms=delay_ms,
            at_ms=o.at_ms,
            retries=o.retries,
            timeout_s=o.timeout_s,
            group=group,
            unique=unique,
        )

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """Enqueue one job with these arguments.

        :raises EnqueueError: for arguments that do not fit the function's signature.
        :raises PayloadError: for arguments orjson cannot encode.
        :raises PayloadTooLarge: for a payload over ``max_payload_bytes``.
        :raises BrokerUnavailable: if Redis cannot be reached.
        """
        (handle,) = await self.worker.client.enqueue([self.call(*args, **kwargs)])
        return handle

    async def enqueue_in(
        self, delay: Seconds, /, *args: P.args, **kwargs: P.kwargs
    ) -> JobHandle[R]:
        """Enqueue one job to run ``delay`` seconds from now."""
        return await self.options(delay=delay).enqueue(*args, **kwargs)

    async def enqueue_at(
        self, when: datetime, /, *args: P.args, **kwargs: P.kwargs
    ) -> JobHandle[R]:
        """Enqueue one job to run at ``when``."""
        return await self.options(at=when).enqueue(*args, **kwargs)

    def max_attempts(self, retries_override: int | None) -> int:
        retries = self.retries if retries_override is None else retries_override
        return retries + 1


_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def positional_arity(signature: inspect.Signature) -> tuple[int, int] | None:
    """How many positional arguments, after the context, a call without keyword arguments
    may pass: ``(least, most)``; None when such a call has to be checked by
    ``Signature.bind`` (no context parameter, or a required keyword-only parameter).

    ``Task.call`` checks the common call, positional arguments only, with this instead
    of binding them, which is many times slower.
    """
    params = list(signature.parameters.values())
    if not params or params[0].kind not in _POSITIONAL:
        return None
    least = most = 0
    for p in params[1:]:
        if p.kind in _POSITIONAL:
            most += 1
            if p.default is p.empty:
                least = most
        elif p.kind is p.VAR_POSITIONAL:
            most = sys.maxsize
        elif p.kind is p.KEYWORD_ONLY and p.default is p.empty:
            return None
    return least, most
