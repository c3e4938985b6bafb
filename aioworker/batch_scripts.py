"""Typed wrappers of the batch scripts (``lua/batch_*.lua``), one per script, same names.

Each wrapper builds ``KEYS``/``ARGV`` exactly as the script's header documents and turns
the reply into Python values; running goes through :meth:`aioworker.scripts.Scripts.run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .arity import pieces
from .keys import BatchKeys, QueueKeys
from .reply import text
from .scripts import Arg, Scripts

__all__ = ("ApplyReply", "BatchEvent", "BatchScripts", "DueCallback", "InfoReply")


@dataclass(frozen=True, slots=True)
class BatchEvent:
    """One event for ``batch_apply``: ``ok``/``failed``/``skip`` of a child job, ``seal``,
    ``cancel``, or ``sent`` (``job_id`` is then the callback name)."""

    event: str
    job_id: str = ""
    queue: str = ""


@dataclass(frozen=True, slots=True)
class DueCallback:
    """A callback that became due, reserved for the caller to enqueue.

    :ivar name: ``complete`` or ``success``.
    :ivar spec: the callback's stored spec (json).
    :ivar snapshot: ``total|succeeded|failed|skipped|finished_ms`` when it became due.
    """

    name: str
    spec: bytes
    snapshot: str


@dataclass(frozen=True, slots=True)
class ApplyReply:
    results: list[int]
    due: list[DueCallback]


@dataclass(frozen=True, slots=True)
class InfoReply:
    meta: dict[str, str]
    cursor: str
    failed: list[str]


class BatchScripts:
    """The batch scripts, run through the core :class:`Scripts`."""

    def __init__(self, scripts: Scripts) -> None:
        self._scripts = scripts

    async def batch_create(
        self, b: BatchKeys, description: str, ttl_ms: int, on_complete: bytes, on_success: bytes
    ) -> tuple[bool, int]:
        """Returns (created now, created_ms)."""
        args: list[Arg] = [description, ttl_ms, on_complete, on_success]
        created, created_ms = await self._scripts.run("batch_create", b.all(), args)
        return bool(created), int(created_ms)

    async def batch_add(
        self, b: BatchKeys, caller: str, job_ids: Sequence[str], *, check: bool = False
    ) -> int:
        """Register children (or only check that they may be added, with ``check``).

        :returns: how many are new to the batch, or -1/-2/-3 (missing/cancelled/sealed).
            More ids than fit in one command are added in several calls (the callers
            add at most ``ADD_CHUNK`` at a time, which fit in one).
        """
        added = 0
        for piece in pieces(job_ids, 6, 1):  # 4 keys, the mode and the caller; one id each
            args: list[Arg] = ["check" if check else "add", caller, *piece]
            code = int(await self._scripts.run("batch_add", b.all(), args))
            if code < 0:
                return code
            added += code
        return added

    async def batch_apply(
        self, b: BatchKeys, events: Sequence[BatchEvent], claim_ms: int = 10_000
    ) -> ApplyReply:
        """Apply children's outcomes (in several calls, each atomic, for more events than
        fit in one command)."""
        results: list[int] = []
        due: list[DueCallback] = []
        for piece in pieces(events, 5, 3):  # 4 keys + the claim; 3 arguments per event
            args: list[Arg] = [claim_ms]
            for e in piece:
                args += [e.event, e.job_id, e.queue]
            codes, flat = await self._scripts.run("batch_apply", b.all(), args)
            results += [int(r) for r in codes]
            due += [
                DueCallback(text(flat[i]), flat[i + 1], text(flat[i + 2]))
                for i in range(0, len(flat), 3)
            ]
        return ApplyReply(results, due)

    async def batch_info(self, b: BatchKeys, cursor: str = "", page: int = 100) -> InfoReply:
        """The batch's record (empty if unknown) and a page of failed ``queue|id`` members."""
        flat, next_cursor, members = await self._scripts.run(
            "batch_info", [b.meta, b.failed], [cursor, page]
        )
        meta = {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}
        return InfoReply(meta, text(next_cursor), [text(m) for m in members])

    async def batch_outbox_push(self, k: QueueKeys, entries: Sequence[str]) -> int:
        keys = [k.batch_outbox, k.batch_claims]
        n = 0
        for piece in pieces(entries, 3, 1):
            n += int(await self._scripts.run("batch_outbox", keys, ["push", *piece]))
        return n

    async def batch_outbox_claim(
        self, k: QueueKeys, max_entries: int, claim_ms: int, handled: Sequence[str] = ()
    ) -> list[str]:
        keys = [k.batch_outbox, k.batch_claims]
        args: list[Arg] = ["claim", max_entries, claim_ms, *handled]
        return [text(e) for e in await self._scripts.run("batch_outbox", keys, args)]

    async def batch_index_add(self, index: str, batch_id: str, max_age_ms: int) -> None:
        await self._scripts.run("batch_index", [index], ["add", batch_id, max_age_ms])

    async def batch_index_list(self, index: str, offset: int, count: int) -> list[tuple[str, int]]:
        flat = await self._scripts.run("batch_index", [index], ["list", offset, count])
        return [(text(flat[i]), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]

    async def batch_index_remove(self, index: str, batch_ids: Sequence[str]) -> int:
        n = 0
        for piece in pieces(batch_ids, 2, 1):
            n += int(await self._scripts.run("batch_index", [index], ["remove", *piece]))
        return n
