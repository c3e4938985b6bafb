"""Bill a month with worker processes and print progress while it runs.

::

    python -m examples.monthly_billing.run                      # 2,000 companies, 2 workers
    python -m examples.monthly_billing.run --retry-failed       # then re-run the declined ones
    python -m examples.monthly_billing.run --compare            # and time the sequential job

Uses ``$AIOWORKER_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) and a key prefix of
its own, whose keys it deletes at the end (``--keep`` keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis.asyncio
from redis.asyncio.cluster import RedisCluster

if TYPE_CHECKING:
    from aioworker import Batch, Worker

APP = "examples.monthly_billing.app:worker"


def _args() -> argparse.Namespace:
    last_month = datetime.now(UTC).replace(day=1).toordinal() - 1
    default_month = datetime.fromordinal(last_month).strftime("%Y-%m")
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--companies", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--month", default=default_month)
    p.add_argument("--retry-failed", action="store_true", help="re-run the declined companies")
    p.add_argument("--compare", action="store_true", help="also time the sequential job")
    p.add_argument("--keep", action="store_true", help="keep the keys in Redis")
    return p.parse_args()


def _start_workers(n: int, env: dict[str, str], logs: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for i in range(n):
        with (logs / f"worker-{i}.log").open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "aioworker", "run", APP, "--log-level", "INFO"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    deadline = time.monotonic() + 30
    for i, proc in enumerate(procs):
        while "serving" not in (logs / f"worker-{i}.log").read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"worker {i} did not start:\n{(logs / f'worker-{i}.log').read_text()}")
            time.sleep(0.05)
    return procs


def _stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.wait(timeout=60)


async def _callback_result(batch: Batch, name: str) -> Any:
    """Wait until the batch enqueued its callback, then for the callback's result."""
    while getattr(await batch.progress(), name) != "sent":  # noqa: ASYNC110 - a demo
        await asyncio.sleep(0.02)
    return await batch_worker().job(f"{batch.id}:{name}", "reports").result(timeout=60)


def batch_worker() -> Worker:
    from .app import worker

    return worker


async def _bill(args: argparse.Namespace) -> dict[str, Any]:
    from aioworker import BatchNotFound, ResultTimeout

    from .app import bill_month, bill_month_sequential, updated_cards_key, worker

    figures: dict[str, Any] = {}
    month, n = args.month, args.companies
    started = time.monotonic()
    await bill_month.options(job_id=f"bill-month-{month}").enqueue(month, n)
    batch = worker.batches.get(f"billing-{month}")
    last = ""
    while True:
        try:
            p = await batch.wait(timeout=0.5)  # returns as soon as the batch finished
        except ResultTimeout:
            p = await batch.progress()
        except BatchNotFound:  # bill_month has not created it yet
            await asyncio.sleep(0.1)
            continue
        elapsed = time.monotonic() - started
        done = p.succeeded + p.failed
        line = (
            f"[{elapsed:6.1f} s] {batch.id}: {done}/{p.total} companies done "
            f"({p.succeeded} billed, {p.failed} failed), {p.pending} pending, {p.state}"
        )
        if line[10:] != last:
            print(line, flush=True)
            last = line[10:]
        if p.finished:
            break
    report = await _callback_result(batch, "on_complete")
    figures["batch_s"] = time.monotonic() - started
    print(f"on_complete report after {figures['batch_s']:.1f} s:")
    for key, value in report.items():
        print(f"  {key}: {value}")

    if args.retry_failed and report["failed"]:
        failed = [job_id async for _, job_id in batch.failed()]
        companies = [job_id.rsplit("-", 1)[1] for job_id in failed]
        client: redis.asyncio.Redis | RedisCluster = (
            RedisCluster.from_url(worker.redis_url)
            if worker.client.broker.is_cluster
            else redis.asyncio.Redis.from_url(worker.redis_url)
        )
        async with client:
            await client.sadd(updated_cards_key(month), *companies)
        print(f"the {len(failed)} companies updated their cards; re-running them")
        t = time.monotonic()
        await batch.retry_failed()
        closed = await _callback_result(batch, "on_success")
        p = await batch.progress()
        print(
            f"on_success after {time.monotonic() - t:.1f} s: billing {closed} closed, "
            f"{p.succeeded}/{p.total} billed (their invoice lines and totals were not redone)"
        )

    if args.compare:
        print(f"the same work sequentially in one job ({n} companies, one after another) ...")
        t = time.monotonic()
        job = await bill_month_sequential.enqueue(f"{month}-seq", n)
        result = await job.result(timeout=3600)
        figures["sequential_s"] = time.monotonic() - t
        ratio = figures["sequential_s"] / figures["batch_s"]
        print(f"sequential: {figures['sequential_s']:.1f} s ({result})")
        print(
            f"batch with {args.workers} worker process(es): {figures['batch_s']:.1f} s, "
            f"{ratio:.1f}x faster"
        )
    await worker.close()
    return figures


async def _delete_keys(url: str, prefix: str) -> None:
    probe = redis.asyncio.Redis.from_url(url)
    async with probe:
        info = await probe.info("cluster")
    client: redis.asyncio.Redis | RedisCluster = (
        RedisCluster.from_url(url)
        if info.get("cluster_enabled")
        else redis.asyncio.Redis.from_url(url)
    )
    async with client:
        batch: list[Any] = []
        async for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 500:
                for k in batch:
                    await client.delete(k)
                batch = []
        for k in batch:
            await client.delete(k)


def main() -> None:
    args = _args()
    url = os.environ.get("AIOWORKER_REDIS_URL", "redis://127.0.0.1:6379/0")
    prefix = f"billing-demo-{uuid.uuid4().hex[:6]}"
    os.environ["AIOWORKER_REDIS_URL"] = url
    os.environ["BILLING_PREFIX"] = prefix  # read by the app module, here and in the workers
    logs = Path(tempfile.mkdtemp(prefix="monthly-billing-"))
    print(f"Redis {url}, key prefix {prefix}; worker logs in {logs}")
    procs = _start_workers(args.workers, dict(os.environ), logs)
    try:
        asyncio.run(_bill(args))
    finally:
        _stop_workers(procs)
        if not args.keep:
            asyncio.run(_delete_keys(url, prefix))


if __name__ == "__main__":
    main()
