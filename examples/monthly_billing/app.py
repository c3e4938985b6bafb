"""Monthly billing: one job fans out one job per company, and a callback reports the month.

Run workers with ``aioworker run examples.monthly_billing.app:worker``; ``run.py`` in
this directory starts some, bills a month and prints progress (see the README).

- ``bill_month`` creates the month's batch (id ``billing-<month>``: running it twice
  reuses the batch, and child ids ``billing-<month>-<company>`` make the adds idempotent),
  adds one ``bill_company`` job per company and seals the batch.
- ``bill_company`` is a sequence of idempotent steps with ``retries=0`` (charging a card
  twice is worse than not at all): invoice lines are read in chunks and bulk-upserted
  under ``ctx.iterate`` (the cursor is checkpointed), then ``ctx.step`` runs the total,
  the charge and the bookkeeping once each.  After a failure, a deploy or a crash, a
  re-run skips every step that completed.
- ``month_report`` (``on_complete``) reports the counts and where the failed companies
  are; ``month_closed`` (``on_success``) runs once every company is billed, which may be
  after the failed ones were re-run.
- ``bill_month_sequential`` does the same work in one job, one company after another:
  the baseline the README compares against.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio
from redis.asyncio.cluster import RedisCluster

from aioworker import JobContext, Worker

from .db import Declined, FakeDatabase, UsageRow

__all__ = ("DECLINE_EVERY", "bill_company", "bill_month", "updated_cards_key", "worker")

log = logging.getLogger("billing")

PREFIX = os.environ.get("BILLING_PREFIX", "billing-demo")
#: every company whose id is 7 modulo this has a card that is declined until updated
DECLINE_EVERY = int(os.environ.get("BILLING_DECLINE_EVERY", "250"))

worker = Worker(
    prefix=PREFIX,
    queues={"billing": 500, "reports": 10},
    lease_timeout=10,
)
db = FakeDatabase()
_redis: redis.asyncio.Redis | RedisCluster | None = None


def updated_cards_key(month: str) -> str:
    """The SET of companies whose card was updated for ``month`` (the demo's provider)."""
    return f"{PREFIX}:{{billing}}:cards-updated:{month}"


async def _card_declined(company_id: int, month: str) -> bool:
    """The fake payment provider: some cards are declined until the company updates them."""
    global _redis
    if DECLINE_EVERY <= 0 or company_id % DECLINE_EVERY != 7:
        return False
    if _redis is None:
        await worker.client.broker.connect()
        cls = RedisCluster if worker.client.broker.is_cluster else redis.asyncio.Redis
        _redis = cls.from_url(worker.redis_url)
    return not await _redis.sismember(updated_cards_key(month), str(company_id))


async def bill_one(ctx: JobContext | None, month: str, company_id: int) -> int:
    """Bill one company; with a context, every step is checkpointed and skipped on re-runs."""

    def usage(after: int | None) -> AsyncIterator[list[UsageRow]]:
        return db.usage_after(company_id, after)

    if ctx is None:  # the sequential baseline: the same queries, no checkpoints
        async for rows in usage(None):
            await db.upsert_invoice_lines(company_id, month, rows)
        total = await db.invoice_total(company_id, month)
        charge_id = await _charge(company_id, month, total)
        await db.mark_billed(company_id, month, charge_id)
        return total

    async for rows in ctx.iterate(usage, key=lambda chunk: chunk[-1].id, every=1):
        await db.upsert_invoice_lines(company_id, month, rows)
    total = await ctx.step("total", db.invoice_total, company_id, month)
    charge_id = await ctx.step("charge", _charge, company_id, month, total)
    await ctx.step("mark_billed", db.mark_billed, company_id, month, charge_id)
    return total


async def _charge(company_id: int, month: str, cents: int) -> str:
    if await _card_declined(company_id, month):
        raise Declined(f"card of company {company_id} declined ({cents} cents)")
    return await db.charge(company_id, month, cents)


@worker.task(queue="billing", retries=0, timeout=300)
async def bill_company(ctx: JobContext, month: str, company_id: int) -> int:
    """Bill one company for ``month``; returns the invoice total in cents."""
    if ctx.is_resumption:
        log.info("company %d: re-run, completed steps are skipped", company_id)
    return await bill_one(ctx, month, company_id)


@worker.task(queue="reports", retries=5)
async def month_report(ctx: JobContext, month: str) -> dict[str, Any]:
    """on_complete: every company was billed or failed."""
    batch = ctx.batch
    assert batch is not None and batch.outcome is not None
    o = batch.outcome
    report = {
        "month": month,
        "batch": batch.id,
        "companies": o.total,
        "billed": o.succeeded,
        "failed": o.failed,
        "finished_at": o.finished_at.isoformat(timespec="seconds"),
    }
    if o.failed:
        report["where"] = (
            f"the dead-letter set of queue 'billing' (error and traceback of each): "
            f"aioworker batch show examples.monthly_billing.app:worker {batch.id}; "
            f"re-run them with: aioworker batch retry examples.monthly_billing.app:worker "
            f"{batch.id}"
        )
    log.warning("billing %s complete: %s", month, report)
    return report


@worker.task(queue="reports", retries=5)
async def month_closed(ctx: JobContext, month: str) -> str:
    """on_success: every company is billed (possibly after re-runs)."""
    log.warning("billing %s closed: every company is billed", month)
    return month


@worker.task(queue="reports", retries=0, timeout=3600)
async def bill_month(ctx: JobContext, month: str, companies: int) -> str:
    """Fan the month out: one job per company, in one batch; returns the batch id."""
    batch = worker.batch(
        batch_id=f"billing-{month}",
        on_complete=month_report.call(month),
        on_success=month_closed.call(month),
        description=f"billing {month}, {companies} companies",
    )
    async with batch:  # sealed when the block ends
        await batch.add(
            bill_company.options(job_id=f"billing-{month}-{cid}").call(month, cid)
            for cid in range(1, companies + 1)
        )
    return batch.id


@worker.task(queue="reports", retries=0, timeout=3600)
async def bill_month_sequential(ctx: JobContext, month: str, companies: int) -> dict[str, int]:
    """The baseline: the same work in one job, one company after another."""
    billed = failed = 0
    for cid in range(1, companies + 1):
        try:
            await bill_one(None, month, cid)
            billed += 1
        except Declined:
            failed += 1
    return {"billed": billed, "failed": failed}
