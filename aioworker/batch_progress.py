"""What a batch reports: its progress, and the outcome a callback job receives."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .timeunits import ms_to_datetime

__all__ = ("BatchOutcome", "BatchProgress", "CallbackState", "outcome_of", "progress_of")

CallbackState = Literal["waiting", "due", "sent"]


@dataclass(frozen=True, slots=True)
class BatchProgress:
    """A batch's counters at one moment.

    :ivar total: children added so far.
    :ivar pending: children that have not finished for good (queued, running, retrying).
    :ivar succeeded: children that completed.
    :ivar failed: children that were dead-lettered (and not re-run successfully since).
    :ivar skipped: children of a cancelled batch that were never run.
    :ivar sealed: no more children come from outside the batch.
    :ivar on_complete: the on_complete callback's state, None when there is none.
    :ivar on_success: the on_success callback's state, None when there is none.
    """

    id: str
    description: str
    total: int
    pending: int
    succeeded: int
    failed: int
    skipped: int
    sealed: bool
    cancelled: bool
    created_at: datetime
    finished_at: datetime | None
    on_complete: CallbackState | None
    on_success: CallbackState | None

    @property
    def finished(self) -> bool:
        """Sealed and no child pending: every child completed, died or was skipped."""
        return self.sealed and self.pending == 0

    @property
    def state(self) -> str:
        """``open``, ``sealed``, ``complete`` or ``cancelled``."""
        if self.cancelled:
            return "cancelled"
        if self.finished:
            return "complete"
        return "sealed" if self.sealed else "open"


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    """What a callback job learns of its batch (``ctx.batch.outcome``).

    :ivar event: ``complete`` (every child finished) or ``success`` (every child succeeded).
    :ivar total/succeeded/failed/skipped: the counts when the callback became due.
    """

    event: str
    total: int
    succeeded: int
    failed: int
    skipped: int
    finished_at: datetime


def progress_of(batch_id: str, meta: dict[str, str]) -> BatchProgress:
    """A batch's progress from its stored record (``batch_info``)."""

    def n(key: str) -> int:
        return int(meta.get(key) or 0)

    def callback(name: str) -> CallbackState | None:
        if f"cb:{name}" not in meta:
            return None
        if f"sent:{name}" in meta:
            return "sent"
        return "due" if f"due:{name}" in meta else "waiting"

    return BatchProgress(
        id=batch_id,
        description=meta.get("desc", ""),
        total=n("total"),
        pending=n("pending"),
        succeeded=n("succeeded"),
        failed=n("failed"),
        skipped=n("skipped"),
        sealed=meta.get("sealed") == "1",
        cancelled=meta.get("cancelled") == "1",
        created_at=ms_to_datetime(n("created")),
        finished_at=ms_to_datetime(n("done")) if n("done") else None,
        on_complete=callback("complete"),
        on_success=callback("success"),
    )


def outcome_of(payload: dict[str, Any]) -> BatchOutcome | None:
    """The batch outcome carried by a callback job's payload (``bc``), if any."""
    bc = payload.get("bc")
    if not isinstance(bc, dict):
        return None
    try:
        total, succeeded, failed, skipped, finished_ms = (int(x) for x in bc["n"].split("|"))
        return BatchOutcome(
            str(bc["cb"]), total, succeeded, failed, skipped, ms_to_datetime(finished_ms)
        )
    except (KeyError, ValueError, AttributeError):
        return None
