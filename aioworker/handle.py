"""``JobHandle``: a reference to an enqueued job, to ask for its status and result."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from .errors import JobCancelled, JobDead, JobNotFound, ResultTimeout
from .job import JobInfo, JobStatus
from .payload import DecodeError, decode_record, decode_state, loads, split_stamped
from .timeunits import Seconds, ms_to_datetime, to_seconds

if TYPE_CHECKING:
    from .scripts import StatusReply

__all__ = ("JobHandle", "JobSource")

R = TypeVar("R")

_WHERE = {
    "active": JobStatus.RUNNING,
    "scheduled": JobStatus.SCHEDULED,
    "dead": JobStatus.DEAD,
    "queued": JobStatus.QUEUED,
    "missing": JobStatus.NOT_FOUND,
}


def reply_fields(reply: StatusReply) -> dict[str, Any]:
    """What a job's status reply says, for every reader: task, arguments, attempts,
    error, times, result and status (the checkpoint is left to the caller)."""
    info: dict[str, Any] = {}
    if reply.record:
        try:
            enqueued_ms, body = decode_record(reply.record)
        except DecodeError:
            pass  # a corrupt record (dead-lettered as such): status and error still show
        else:
            info.update(
                task=body["t"],
                args=body.get("a"),
                kwargs=body.get("k"),
                enqueued_at=ms_to_datetime(enqueued_ms),
            )
    if reply.attempts.isdigit():  # garbage in a corrupt record is left out
        info["attempts"] = int(reply.attempts)
    if reply.error:
        info["error"] = loads(reply.error)
    if reply.where == "scheduled" and reply.score:
        info["scheduled_at"] = ms_to_datetime(int(float(reply.score)))
    if reply.where == "result":
        finished_ms, stored = split_stamped(reply.result)
        result = loads(stored)
        info["finished_at"] = ms_to_datetime(finished_ms)
        info["status"] = JobStatus(result["s"])
        info["result"] = result.get("v")
        info["attempts"] = result.get("n", info.get("attempts", 0))
        if result.get("e"):
            info["error"] = result["e"]
        info.setdefault("task", result.get("t"))
    else:
        info["status"] = _WHERE[reply.where]
    return info


class JobSource(Protocol):
    """What a handle asks of the client that made it: a job's status, and a wait for it."""

    async def status_reply(self, queue: str, job_id: str) -> StatusReply: ...

    async def wait_done(self, queue: str, job_id: str, timeout_s: float) -> None: ...


class JobHandle(Generic[R]):
    """A job that was enqueued.

    :ivar id: the job id.
    :ivar queue: its queue.
    :ivar created: False when enqueue found a job with this id already (nothing new was
        enqueued; this handle refers to the existing job).
    """

    __slots__ = ("_client", "created", "id", "queue")

    def __init__(self, client: JobSource, job_id: str, queue: str, created: bool = True) -> None:
        self._client = client
        self.id = job_id
        self.queue = queue
        self.created = created

    def __repr__(self) -> str:
        return f"<JobHandle {self.queue}/{self.id}>"

    async def info(self) -> JobInfo:
        """Everything known about the job now, read atomically."""
        reply = await self._client.status_reply(self.queue, self.id)
        info: dict[str, Any] = {"id": self.id, "queue": self.queue, **reply_fields(reply)}
        if reply.state:
            with contextlib.suppress(DecodeError):  # a corrupt checkpoint is left out
                info["state"] = decode_state(reply.state)[0]
        return JobInfo(**info)

    async def status(self) -> JobStatus:
        """Where the job is now."""
        return (await self.info()).status

    async def result(self, timeout: Seconds | None = None) -> R:  # noqa: ASYNC109
        """Wait for the job to finish and return its result.

        Waiting blocks on a Redis marker the worker sets when the job finishes, so it does
        not poll Redis in a loop.

        :param timeout: seconds to wait at most (``None`` waits for ever).
        :raises JobDead: if the job was dead-lettered.
        :raises JobCancelled: if an operator cancelled it.
        :raises JobFailed: if it failed for good.
        :raises JobNotFound: if no such job is known.
        :raises ResultTimeout: if it did not finish in time.
        """
        deadline = None if timeout is None else time.monotonic() + to_seconds(timeout)
        while True:
            info = await self.info()
            if info.status is JobStatus.COMPLETE:
                value: R = info.result
                return value
            if info.status is JobStatus.DEAD:
                raise JobDead(self.id, info.error or {})
            if info.status is JobStatus.CANCELLED:
                raise JobCancelled(self.id, info.error or {"type": "Cancelled", "message": ""})
            if info.status is JobStatus.NOT_FOUND:
                raise JobNotFound(f"job {self.id} not found in queue {self.queue!r}")
            remaining = 5.0 if deadline is None else deadline - time.monotonic()
            if remaining <= 0:
                raise ResultTimeout(f"job {self.id} did not finish within {timeout} s")
            await self._client.wait_done(self.queue, self.id, min(remaining, 5.0))
