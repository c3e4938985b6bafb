"""``aioworker batch list|show|cancel|retry app:worker [ID]``: inspect and steer batches.

- ``list``: batches, newest first, with their counters and state.
- ``show ID``: one batch: counters, callbacks, and its failed children (queue and job id,
  to look them up in the dead-letter sets).
- ``cancel ID``: children that have not started are skipped; callbacks not yet due never
  fire (asks first; ``--yes`` to skip the question).
- ``retry ID``: re-run the failed children from the dead-letter sets (asks first).

Exit status 1 when the batch does not exist.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..batches import BatchProgress
from ..errors import BatchNotFound
from .common import EXIT_FAILED, add_app_arguments, common
from .output import add_json, add_yes, ago, confirm, emit_json, out, run_with_worker, table, when

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = ("register",)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("batch", help="list, show, cancel batches")
    actions = p.add_subparsers(dest="action", required=True)

    ls = actions.add_parser("list", help="batches, newest first", parents=[common()])
    add_app_arguments(ls)
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    add_json(ls)
    ls.set_defaults(handler=lambda args: run_with_worker(args, lambda w: _list(w, args)))

    show = actions.add_parser("show", help="one batch and its failed children", parents=[common()])
    add_app_arguments(show)
    show.add_argument("id", metavar="ID", help="the batch id")
    show.add_argument(
        "--failed", type=int, default=20, help="list up to this many failed children (20)"
    )
    add_json(show)
    show.set_defaults(handler=lambda args: run_with_worker(args, lambda w: _show(w, args)))

    for name, text in (
        ("cancel", "cancel a batch: children that have not started are skipped"),
        ("retry", "re-run a batch's failed children"),
    ):
        act = actions.add_parser(name, help=text, parents=[common()])
        add_app_arguments(act)
        act.add_argument("id", metavar="ID", help="the batch id")
        add_yes(act)
        act.set_defaults(
            handler=lambda args, fn=_cancel if name == "cancel" else _retry: run_with_worker(
                args, lambda w: fn(w, args)
            )
        )


def _counts(p: BatchProgress) -> str:
    return (
        f"{p.total} total, {p.pending} pending, {p.succeeded} succeeded, "
        f"{p.failed} failed, {p.skipped} skipped"
    )


async def _list(worker: Worker, args: argparse.Namespace) -> int:
    batches = await worker.batches.list(limit=args.limit)
    if args.json:
        emit_json(batches)
        return 0
    now = datetime.now(UTC)
    rows = [
        (
            b.id,
            b.state,
            b.total,
            b.pending,
            b.succeeded,
            b.failed,
            b.skipped,
            ago(b.created_at, now),
            b.description,
        )
        for b in batches
    ]
    headers = ("ID", "STATE", "TOTAL", "PENDING", "OK", "FAILED", "SKIPPED", "CREATED", "DESC")
    out(table(headers, rows) if rows else "no batches")
    return 0


async def _show(worker: Worker, args: argparse.Namespace) -> int:
    batch = worker.batches.get(args.id)
    try:
        p = await batch.progress()
    except BatchNotFound as exc:
        out(str(exc))
        return EXIT_FAILED
    failed: list[tuple[str, str]] = []
    if p.failed and args.failed > 0:
        async for item in batch.failed(page=min(args.failed, 500)):
            failed.append(item)
            if len(failed) >= args.failed:
                break
    if args.json:
        emit_json({"batch": p, "failed": [{"queue": q, "id": i} for q, i in failed]})
        return 0
    out(f"batch {p.id}: {p.state}" + (f" ({p.description})" if p.description else ""))
    out(f"  {_counts(p)}")
    out(f"  created {when(p.created_at)}, finished {when(p.finished_at)} (UTC)")
    for name, state in (("on_complete", p.on_complete), ("on_success", p.on_success)):
        if state is not None:
            out(f"  {name}: {state} (job id {p.id}:{name})")
    if not p.sealed:
        out("  not sealed: its callbacks fire only once it is sealed")
    if failed:
        more = f" (first {len(failed)} of {p.failed})" if p.failed > len(failed) else ""
        out(f"  failed children{more}, in their queues' dead-letter sets:")
        out(table(("QUEUE", "JOB ID"), failed))
        out(f"  re-run them: aioworker batch retry {args.app} {p.id}")
    return 0


async def _cancel(worker: Worker, args: argparse.Namespace) -> int:
    batch = worker.batches.get(args.id)
    try:
        p = await batch.progress()
    except BatchNotFound as exc:
        out(str(exc))
        return EXIT_FAILED
    confirm(f"Cancel batch {p.id} ({p.pending} pending)?", args.yes)
    if await batch.cancel():
        out(f"batch {p.id} cancelled: {p.pending} pending child(ren) will be skipped")
    else:
        out(f"batch {p.id} was already cancelled")
    return 0


async def _retry(worker: Worker, args: argparse.Namespace) -> int:
    batch = worker.batches.get(args.id)
    try:
        p = await batch.progress()
    except BatchNotFound as exc:
        out(str(exc))
        return EXIT_FAILED
    confirm(f"Re-run the {p.failed} failed child(ren) of batch {p.id}?", args.yes)
    moved = await batch.retry_failed()
    out(f"batch {p.id}: {moved} failed child(ren) put back in their queues")
    return 0
