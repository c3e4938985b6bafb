"""Batches at scale: one batch of 100,000 children, added from a generator.

``python -m bench.batch_scale [--children 100000] [--workers 2]`` uses
``$AIOWORKER_REDIS_URL`` (default ``redis://127.0.0.1:6379/0``) with a key prefix of its
own, deleted at the end, and measures:

- adding the children from a generator (3 round trips per 1,000: check, enqueue,
  register) and the producer's peak RSS, which must not grow with the batch;
- the Redis memory the batch's own keys take (``MEMORY USAGE``; the queued children's
  payloads are measured apart);
- how long worker processes take to run the children (a no-op task) until the
  ``on_complete`` callback ran, and that it ran once with the exact counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio

from aioworker import JobContext, ResultTimeout, Worker

PREFIX = os.environ.get("BATCH_BENCH_PREFIX", "batch-bench")
worker = Worker(prefix=PREFIX, queues={"default": 500})


@worker.task(name="noop", retries=0)
async def noop(ctx: JobContext, n: int) -> None:
    return None


@worker.task(name="done", retries=3)
async def done(ctx: JobContext) -> dict[str, int]:
    batch = ctx.batch
    assert batch is not None and batch.outcome is not None
    return {"total": batch.outcome.total, "succeeded": batch.outcome.succeeded}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def _memory(url: str) -> int:
    async with redis.asyncio.Redis.from_url(url) as r:
        return int((await r.info("memory"))["used_memory"])


def _spawn(n: int, url: str) -> list[subprocess.Popen[bytes]]:
    logs = Path(tempfile.mkdtemp(prefix="batch-bench-"))
    env = dict(os.environ, BATCH_BENCH_PREFIX=PREFIX, AIOWORKER_REDIS_URL=url)
    procs = []
    for i in range(n):
        with (logs / f"w{i}.log").open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "aioworker", "run", "bench.batch_scale:worker"],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    return procs


async def _key_bytes(url: str, keys: list[str]) -> int:
    async with redis.asyncio.Redis.from_url(url) as r:
        sizes = [await r.memory_usage(k, samples=0) for k in keys]
    return sum(s or 0 for s in sizes)


async def _bench(args: argparse.Namespace, url: str) -> dict[str, Any]:
    n = args.children
    figures: dict[str, Any] = {"children": n}
    batch = worker.batch(on_complete=done.call(), description=f"bench {n}")
    await batch.create()
    rss_before = _rss_mb()
    mem_before = await _memory(url)
    t = time.monotonic()
    added = await batch.add(noop.call(i) for i in range(n))
    figures["add_s"] = time.monotonic() - t
    await batch.seal()
    assert added == n
    figures["producer_rss_growth_mb"] = _rss_mb() - rss_before
    figures["redis_mb_children_queued"] = (await _memory(url) - mem_before) / 2**20
    print(f"added {n} children in {figures['add_s']:.1f} s", flush=True)

    procs = _spawn(args.workers, url)
    try:
        t = time.monotonic()
        while True:
            try:
                p = await batch.wait(timeout=2)
                break
            except ResultTimeout:
                p = await batch.progress()
                print(f"  {p.succeeded}/{p.total} done", flush=True)
        while (await batch.progress()).on_complete != "sent":  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        report = await worker.job(f"{batch.id}:on_complete").result(timeout=60)
        figures["run_s"] = time.monotonic() - t
        assert report == {"total": n, "succeeded": n}, report
        assert p.succeeded == n and p.failed == 0
        figures["redis_mb_batch_keys"] = await _key_bytes(url, batch.keys.all()) / 2**20
        print(f"ran them with {args.workers} worker(s) in {figures['run_s']:.1f} s", flush=True)
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            proc.wait(timeout=60)
    return figures


async def _cleanup(url: str) -> None:
    async with redis.asyncio.Redis.from_url(url) as r:
        keys = [k async for k in r.scan_iter(match=f"{PREFIX}:*", count=1000)]
        for i in range(0, len(keys), 500):
            await r.delete(*keys[i : i + 500])


def main() -> None:
    global PREFIX
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--children", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    url = os.environ.get("AIOWORKER_REDIS_URL", "redis://127.0.0.1:6379/0")
    worker.configure(redis_url=url)
    PREFIX = worker.prefix = f"batch-bench-{uuid.uuid4().hex[:6]}"
    try:
        figures = asyncio.run(_bench(args, url))
    finally:
        asyncio.run(_cleanup(url))
    for key, value in figures.items():
        print(f"{key}: {value:.2f}" if isinstance(value, float) else f"{key}: {value}")


if __name__ == "__main__":
    main()
