"""Unique jobs, debounce and throttle: at most one job per key, decided atomically.

A job's unique key is its task name plus a digest of its normalised arguments (bound to
the function's signature with defaults applied, then encoded by orjson with sorted keys,
so ``f(1, b=2)``, ``f(a=1, b=2)`` and ``f(1)`` with ``b=2`` as default are one key), or an
explicit key (a string, or a function of the arguments returning one).  Keys are per
queue: each lock lives under its queue's hash tag.

Policies (``unique=`` on a task or in ``.options(...)``):

- ``Unique("until_started")``: no second job for the key while one waits; released when a
  worker leases the job (the fetch that starts it).
- ``Unique("until_succeeded")`` (default): no second job while one is queued, scheduled,
  running or waiting for a retry; released when the job completes, **and also when it is
  dead-lettered** (a dead job no longer holds its key; reviving it does not take the key
  back from a job enqueued meanwhile).
- ``Unique("while_running")``: any number may be enqueued, but at most one runs at a
  time: a job whose key is held by a running job (one with a live lease) is deferred
  without using an attempt, and tries again within a second.
- ``Throttle(window)``: the first enqueue creates a job; further ones within ``window``
  seconds of it create nothing (first arguments win).
- ``Debounce(window)``: the first enqueue creates a job that runs ``window`` seconds
  later; each further enqueue before it starts replaces its arguments (latest win) and,
  with ``extend=True``, pushes its run time back to ``window`` from now, up to
  ``max_wait`` after the first enqueue.

Every lock has a TTL (``ttl``, default one hour; a throttle's is its window), so a lost
job cannot hold its key for ever.  An enqueue that finds the key held creates nothing and
returns a handle to the holder with ``created=False``; with ``on_duplicate="raise"`` it
raises :class:`~aioworker.errors.DuplicateJob` instead.

How locks are released: the enqueue script takes the lock and checks an existing one in
the same step, and a lock binds only while its holder is in the state its mode names,
which the script reads from the holder's own keys (see :mod:`aioworker.keys`).  So the
lock is released atomically by whatever changes the holder's state (the fetch that
leases it, the ack that completes it, the dead letter), without those scripts having to
know about locks.
"""

from __future__ import annotations

import hashlib
import inspect
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

import orjson

from .bounds import check_seconds
from .errors import ConfigError, EnqueueError, PayloadError
from .job import JobRecord, UniqueSpec
from .timeunits import Seconds, to_ms

if TYPE_CHECKING:
    from .host import Host

__all__ = (
    "Debounce",
    "OnDuplicate",
    "RunningLock",
    "Throttle",
    "Unique",
    "UniqueMode",
    "UniquePolicy",
    "UniqueSpec",
    "args_key",
    "as_policy",
    "resolve",
)

UniqueMode = Literal["until_started", "until_succeeded", "while_running"]
OnDuplicate = Literal["return", "raise"]
KeyFn = Callable[..., str]
"""Called with a job's arguments (without the context); returns its unique key."""

MAX_KEY_CHARS = 1000
DEFAULT_TTL_S = 3600.0


def _check_common(key: str | KeyFn | None, on_duplicate: str = "return") -> None:
    if key is not None and not callable(key) and not (isinstance(key, str) and key):
        raise ConfigError(f"unique key must be a non-empty string or a function, got {key!r}")
    if on_duplicate not in get_args(OnDuplicate):
        raise ConfigError(f"on_duplicate must be 'return' or 'raise', got {on_duplicate!r}")


@dataclass(frozen=True, slots=True)
class Unique:
    """At most one job per key, for as long as ``mode`` says (see the module docstring).

    :param mode: ``until_started``, ``until_succeeded`` or ``while_running``.
    :param key: an explicit key, or a function of the arguments returning one (default:
        task name and normalised arguments).
    :param ttl: seconds after which the lock lapses whatever became of its job.
    :param on_duplicate: ``return`` the holder's handle, or ``raise`` DuplicateJob.
    :raises ConfigError: for an unknown mode, a bad key or a TTL below one millisecond.
    """

    mode: UniqueMode = "until_succeeded"
    key: str | KeyFn | None = None
    ttl: Seconds = DEFAULT_TTL_S
    on_duplicate: OnDuplicate = "return"

    def __post_init__(self) -> None:
        if self.mode not in get_args(UniqueMode):
            raise ConfigError(
                f"unique mode must be one of {', '.join(get_args(UniqueMode))}, got {self.mode!r}"
            )
        _check_common(self.key, self.on_duplicate)
        if to_ms(check_seconds(self.ttl, "unique ttl", error=ConfigError)) < 1:
            raise ConfigError("unique ttl must be positive")


@dataclass(frozen=True, slots=True)
class Throttle:
    """Run the first of the enqueues of a key within ``window`` seconds; drop the rest.

    :param window: seconds from the first enqueue during which further ones create nothing.
    :param key: an explicit key or a function of the arguments (default: task + arguments).
    :param on_duplicate: ``return`` the first job's handle, or ``raise`` DuplicateJob.
    """

    window: Seconds
    key: str | KeyFn | None = None
    on_duplicate: OnDuplicate = "return"

    def __post_init__(self) -> None:
        _check_common(self.key, self.on_duplicate)
        if to_ms(check_seconds(self.window, "throttle window", error=ConfigError)) < 1:
            raise ConfigError("throttle window must be positive")


@dataclass(frozen=True, slots=True)
class Debounce:
    """Run once, ``window`` seconds after the enqueues of a key stop, with the latest arguments.

    :param window: seconds between an enqueue and the run.
    :param key: an explicit key or a function of the arguments (default: the task name
        alone, since the arguments are what changes between calls).
    :param extend: push the run time back to ``window`` from now at each enqueue.
    :param max_wait: run at most this long after the first enqueue however often it is
        pushed back (None: no bound).
    :param ttl: seconds the lock outlives the job's run time, in case the job is lost.
    """

    window: Seconds
    key: str | KeyFn | None = None
    extend: bool = True
    max_wait: Seconds | None = None
    ttl: Seconds = DEFAULT_TTL_S

    def __post_init__(self) -> None:
        _check_common(self.key)
        if to_ms(check_seconds(self.window, "debounce window", error=ConfigError)) < 1:
            raise ConfigError("debounce window must be positive")
        check_seconds(self.ttl, "debounce ttl", error=ConfigError)
        if self.max_wait is not None:
            check_seconds(self.max_wait, "debounce max_wait", error=ConfigError)
        if self.max_wait is not None and to_ms(self.max_wait) < to_ms(self.window):
            raise ConfigError("debounce max_wait must be at least the window")


UniquePolicy = Unique | Throttle | Debounce


def as_policy(value: UniquePolicy | str) -> UniquePolicy:
    """A policy from what ``unique=`` accepts: a policy, or a :data:`UniqueMode` string.

    :raises ConfigError: for anything else.
    """
    if isinstance(value, Unique | Throttle | Debounce):
        return value
    if isinstance(value, str):
        return Unique(value)  # type: ignore[arg-type]  # checked in __post_init__
    raise ConfigError(f"unique must be Unique, Throttle, Debounce or a mode name, got {value!r}")


def args_key(
    task: str, signature: inspect.Signature, args: Sequence[Any], kwargs: Mapping[str, Any]
) -> str:
    """The default unique key: task name and a digest of the normalised arguments.

    :raises EnqueueError: if the arguments do not fit the signature.
    :raises PayloadError: if an argument (or a default) cannot be encoded as JSON.
    """
    try:
        bound = signature.bind(None, *args, **kwargs)
    except TypeError as exc:
        raise EnqueueError(f"bad arguments for task {task!r}: {exc}") from exc
    bound.apply_defaults()
    values = dict(list(bound.arguments.items())[1:])  # without the context
    try:
        data = orjson.dumps(values, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise PayloadError(
            f"cannot build the unique key of task {task!r}: arguments are not JSON: {exc}"
        ) from exc
    return f"{task}:{hashlib.sha256(data).hexdigest()[:32]}"


def _key(
    policy: UniquePolicy,
    task: str,
    signature: inspect.Signature,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> str:
    key = policy.key
    if callable(key):
        try:
            key = key(*args, **kwargs)
        except Exception as exc:
            raise EnqueueError(
                f"unique key function of task {task!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(key, str) or not key:
            raise EnqueueError(f"unique key function of task {task!r} returned {key!r}")
    elif key is None:
        if isinstance(policy, Debounce):
            return task
        return args_key(task, signature, args, kwargs)
    if len(key) > MAX_KEY_CHARS:
        raise EnqueueError(f"unique key of task {task!r} is longer than {MAX_KEY_CHARS} chars")
    return key


_MODES = {"until_started": "start", "until_succeeded": "success", "while_running": "running"}


def resolve(
    policy: UniquePolicy,
    task: str,
    signature: inspect.Signature,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
) -> UniqueSpec:
    """Resolve a policy for one call: its key, mode and times.

    :raises EnqueueError: if the key cannot be built from the arguments.
    """
    key = _key(policy, task, signature, args, kwargs)
    if isinstance(policy, Unique):
        return UniqueSpec(
            _MODES[policy.mode], key, to_ms(policy.ttl), policy.on_duplicate == "raise"
        )
    if isinstance(policy, Throttle):
        window = to_ms(policy.window)
        return UniqueSpec("throttle", key, window, policy.on_duplicate == "raise")
    max_wait = 0 if policy.max_wait is None else to_ms(policy.max_wait)
    return UniqueSpec(
        "debounce",
        key,
        to_ms(policy.ttl),
        delay_ms=to_ms(policy.window),
        extend=policy.extend,
        max_wait_ms=max_wait,
    )


class RunningLock:
    """The gate of ``while_running`` jobs: one running job per key, the others deferred.

    Jobs without a ``w`` payload entry pass at once.  The lock (``unique_run:<key>``)
    binds only while its holder has a live lease, so a crashed worker's lock is free as
    soon as its lease lapses; its TTL cleans it up.

    :param host: the worker whose Redis holds the locks.
    """

    #: Longest deferral while the key is held: how soon a waiting job looks again.
    MAX_DEFER_S = 1.0

    def __init__(self, host: Host) -> None:
        self._host = host

    def __repr__(self) -> str:
        return "<RunningLock>"

    async def enter(self, job: JobRecord) -> float | None:
        """None to run the job now, else the seconds to defer it."""
        held = job.payload.get("w")
        if held is None:
            return None
        key, ttl_ms = str(held[0]), int(held[1])
        k = self._host.client.keys(job.queue)
        scripts = self._host.client.broker.scripts
        keys = [k.unique_run(key), k.active]
        wait_ms = int(await scripts.run("unique_run", keys, [job.id, ttl_ms]))
        if wait_ms == 0:
            return None
        wait_s = min(wait_ms / 1000, self.MAX_DEFER_S)
        return wait_s * (0.5 + random.random() / 2)

    async def exit(self, job: JobRecord, outcome: str) -> None:
        """Release the job's lock (only if it still holds it)."""
        held = job.payload.get("w")
        if held is None:
            return
        k = self._host.client.keys(job.queue)
        scripts = self._host.client.broker.scripts
        await scripts.run("unique_run_release", [k.unique_run(str(held[0]))], [job.id])
