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
    P:{q}:halt:<worker>  LIST    stop tokens for one worker's idle wait: its BLPOP listens on
                                 wake and on this key, and the fetch pipelined behind the
                                 BLPOP leases nothing while it holds a token (expires
                                 after 60 s; see ``Broker.halt``)
    P:{q}:paused         STRING  present while the queue is paused (value: paused_at_ms)
    P:{q}:cancel         HASH    job id -> requested_ms: cancel requests for running jobs,
                                 polled by workers (see :mod:`aioworker.cancellation`)
    P:{q}:result:<id>    STRING  "<finished_ms>|<result json>", expires after the result TTL
    P:{q}:done:<id>      LIST    a short-lived marker that wakes result waiters
    P:{q}:batch_outbox   LIST    "<batch id>|<job id>|<ok|failed|seal>": outcomes of batch
                                 children, pushed by complete/dead in the same script as
                                 the ack, drained into the batch's keys by the workers
    P:{q}:batch_claims   ZSET    outbox entry -> claim deadline in ms (being drained)
    P:{q}:cron:<name>    HASH    periodic schedule ``name`` whose jobs go to queue q:
                                 ``last`` -> marker ms (every tick at or before it was
                                 enqueued or deliberately skipped), ``paused`` -> paused_at_ms,
                                 ``job`` -> id of the last tick's job.  A schedule's state
                                 lives under its queue's hash tag so the tick script can
                                 compare-and-set the marker and enqueue in one slot.
    P:{q}:unique:<key>   STRING  unique lock: "<mode>|<holder job id>", with a TTL.  It binds
                                 only while the holder is in the state its mode names,
                                 which the enqueue script reads from the holder's own keys
                                 (never leased: ``start``/``debounce``; neither finished nor
                                 dead-lettered: ``success``; ``throttle``: until the TTL).
                                 So a lock is released in the very step that changes its
                                 holder's state (fetch, complete, dead), by no extra write,
                                 and nothing needs to find it; an unbound lock left over
                                 expires on its TTL (see :mod:`aioworker.unique`)
    P:{q}:unique_run:<key> STRING ``while_running`` lock: id of the job running under it,
                                 binding while that job holds a live lease; with a TTL
    P:{q}:fair           ZSET    job id -> virtual position: ready jobs of fair-share groups
                                 (the ready LIST holds the others; see lua/fetch.lua)
    P:{q}:groups         HASH    fair-share groups: ``s:<g>`` next position of group g,
                                 ``floor`` highest position served, ``plain`` position of
                                 the ready LIST, ``t:<g>`` jobs enqueued, ``r:<g>`` running,
                                 ``d:<g>`` completed, ``x:<g>`` dead-lettered, ``c:<g>``
                                 concurrency cap of g, ``cap`` cap of every group
    P:{q}:group_of       HASH    job id -> its group, from enqueue until the job completes
                                 or its dead letter is trimmed (exists only while the queue
                                 holds grouped jobs: fetch keeps its plain path otherwise)

Invariant: every job id of a queue is in exactly one of ``ready``, ``fair``, ``scheduled``,
``active`` or ``dead`` at the end of every script, whatever fails inside it (a job that
finished or was cancelled is in none, and its record is gone with it).  Redis keeps the
writes a script made before an error, so every script checks the type of each key it
writes before its first write (``lua/_guards.lua``) and fails with ``WRONGTYPE aioworker:
key <k> is a <t>, expected <u>`` having changed nothing; a value it depends on that is
garbage (an attempt count that is not an integer; the worker checks the record, the
payload and the checkpoint itself) makes the job a dead letter with the error "corrupt
record: <what>" instead of an error, and a group counter holding garbage counts again
from 0.  ``dead`` is trimmed by count and age when a
job dies and on the worker's timer (``lua/dead_trim.lua``).

Keys not bound to one queue carry their own hash tag, e.g. ``P:{workers}``::

    P:{queues}           SET     every queue name a worker served or a producer enqueued to
                                 (how tools find queues without ``KEYS *``)
    P:{workers}:ids      ZSET    worker id -> deadline in ms (Redis time of its last
                                 refresh + its TTL); a worker past its deadline is gone
    P:{workers}:info     HASH    worker id -> json record (host, pid, queues, counters)
    P:{batches}          ZSET    batch id -> created_ms (for listing batches)

Batch keys (:mod:`aioworker.batches`) carry the hash tag ``{batch:<id>}``; they expire
``ttl`` after the batch's last activity::

    P:{batch:b}:meta     HASH    description, counters (total, pending, succeeded, failed,
                                 skipped), sealed/cancelled flags, callback specs and their
                                 due/claim/sent marks
    P:{batch:b}:children HASH    child job id -> p (pending) | s | f | x (skipped)
    P:{batch:b}:failed   SET     "<queue>|<job id>" of the children that failed for good
    P:{batch:b}:done     LIST    a marker that wakes ``Batch.wait()`` once it finished

Limiter keys (:mod:`aioworker.limits`) carry the hash tag ``{limit:<name>}``, so all the
keys of one limiter name (``"stripe"``, or a keyed name like ``"erp:tenant-42"``) live in
one slot and different names spread over the cluster.  Every one of them expires on its
own once the limiter is idle, so thousands of keyed names leave nothing behind::

    P:{limit:n}:holders  ZSET    Concurrent: hold token -> lease deadline in ms
    P:{limit:n}:since    HASH    Concurrent: hold token -> acquired_ms; ``~avg`` -> mean
                                 hold time in ms (moving average, for wait estimates)
    P:{limit:n}:wake     LIST    Concurrent: one token per release, for waiters in BLPOP
    P:{limit:n}:bucket   HASH    Bucket: ``w`` -> current window index, ``n`` -> used in it
    P:{limit:n}:log      ZSET    Window: one member per admitted unit -> admission time in us
    P:{limit:n}:tat      STRING  GCRA: theoretical arrival time in us
    P:{limit:n}:points   HASH    Points: ``p`` -> points left, ``t`` -> last refill in us
    P:{limit:n}:waits    ZSET    waiter id (``<queue> <job id>`` for a job) -> first
                                 refusal in ms: place in line for wait estimates, the
                                 clock of ``max_wait``, and whom a freed slot goes to

Leadership keys (:mod:`aioworker.leader`) carry the hash tag ``{leader:<name>}``::

    P:{leader:n}         STRING  the lease: the holder's token, expiring after its TTL
    P:{leader:n}:term    STRING  counter incremented at every election (a fencing token)
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

__all__ = (
    "MAX_NAME_CHARS",
    "BatchKeys",
    "LeaderKeys",
    "LimiterKeys",
    "QueueKeys",
    "RegistryKeys",
    "validate_name",
)

#: Longest queue, prefix, batch, limiter or leadership name accepted.
MAX_NAME_CHARS = 200


def validate_name(kind: str, name: object) -> str:
    """Check a queue or prefix name (or another name built into a key) against the one
    rule every entry point applies: 1-200 printable characters, none of them a brace
    (a brace would move the key into another hash tag, i.e. another queue's slot) or
    whitespace.

    :param kind: what the name is, for the error message.
    :param name: the name to check.
    :returns: the name unchanged.
    :raises ConfigError: if it breaks the rule (a ``ValueError``: the message names the
        value and the rule).
    """
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= MAX_NAME_CHARS
        or "{" in name
        or "}" in name
        or not name.isprintable()
        or any(c.isspace() for c in name)
    ):
        shown = name if not isinstance(name, str) or len(name) <= 60 else name[:60] + "..."
        raise ConfigError(
            f"invalid {kind} name {shown!r}: use 1-{MAX_NAME_CHARS} printable characters "
            "without braces or whitespace"
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

    def halt(self, worker_id: str) -> str:
        return f"{self.base}:halt:{worker_id}"

    @property
    def paused(self) -> str:
        return f"{self.base}:paused"

    @property
    def cancel(self) -> str:
        return f"{self.base}:cancel"

    def result(self, job_id: str) -> str:
        return f"{self.base}:result:{job_id}"

    def done(self, job_id: str) -> str:
        return f"{self.base}:done:{job_id}"

    @property
    def batch_outbox(self) -> str:
        return f"{self.base}:batch_outbox"

    @property
    def batch_claims(self) -> str:
        return f"{self.base}:batch_claims"

    def cron(self, name: str) -> str:
        return f"{self.base}:cron:{name}"

    def unique(self, key: str) -> str:
        return f"{self.base}:unique:{key}"

    def unique_run(self, key: str) -> str:
        return f"{self.base}:unique_run:{key}"

    @property
    def fair(self) -> str:
        return f"{self.base}:fair"

    @property
    def groups(self) -> str:
        return f"{self.base}:groups"

    @property
    def group_of(self) -> str:
        return f"{self.base}:group_of"


@dataclass(frozen=True, slots=True)
class RegistryKeys:
    """Key names not bound to one queue: the queue and worker registries."""

    prefix: str

    @property
    def queues(self) -> str:
        return f"{self.prefix}:{{queues}}"

    @property
    def workers(self) -> str:
        return f"{self.prefix}:{{workers}}:ids"

    @property
    def worker_info(self) -> str:
        return f"{self.prefix}:{{workers}}:info"

    @property
    def batches(self) -> str:
        return f"{self.prefix}:{{batches}}"


@dataclass(frozen=True, slots=True)
class BatchKeys:
    """Key names of one batch (all in the slot of ``{batch:<id>}``)."""

    prefix: str
    batch_id: str

    @property
    def base(self) -> str:
        return f"{self.prefix}:{{batch:{self.batch_id}}}"

    @property
    def meta(self) -> str:
        return f"{self.base}:meta"

    @property
    def children(self) -> str:
        return f"{self.base}:children"

    @property
    def failed(self) -> str:
        return f"{self.base}:failed"

    @property
    def done(self) -> str:
        return f"{self.base}:done"

    def all(self) -> list[str]:
        """Every key of the batch, in the order the batch scripts take them."""
        return [self.meta, self.children, self.failed, self.done]


@dataclass(frozen=True, slots=True)
class LimiterKeys:
    """Key names of one limiter name (all in the slot of ``{limit:<name>}``)."""

    prefix: str
    name: str

    @property
    def base(self) -> str:
        return f"{self.prefix}:{{limit:{self.name}}}"

    @property
    def holders(self) -> str:
        return f"{self.base}:holders"

    @property
    def since(self) -> str:
        return f"{self.base}:since"

    @property
    def wake(self) -> str:
        return f"{self.base}:wake"

    @property
    def bucket(self) -> str:
        return f"{self.base}:bucket"

    @property
    def log(self) -> str:
        return f"{self.base}:log"

    @property
    def tat(self) -> str:
        return f"{self.base}:tat"

    @property
    def points(self) -> str:
        return f"{self.base}:points"

    @property
    def waits(self) -> str:
        return f"{self.base}:waits"


@dataclass(frozen=True, slots=True)
class LeaderKeys:
    """Key names of one leadership (all in the slot of ``{leader:<name>}``)."""

    prefix: str
    name: str

    @property
    def lease(self) -> str:
        return f"{self.prefix}:{{leader:{self.name}}}"

    @property
    def term(self) -> str:
        return f"{self.lease}:term"
