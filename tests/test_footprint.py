"""What a worker holds in memory: imports it does not need, and per-job objects.

These guard the size of a worker with many jobs in flight without measuring RSS:
modules that must stay unloaded, and allocation counts of objects a worker keeps per job.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import tracemalloc
from typing import Any

from aioworker import JobContext, Worker
from aioworker.executor import Outcome, execute
from aioworker.running import Running

# never needed by `import aioworker`: extras, named time zones, the dashboard
# (opentelemetry is left out: redis-py imports it itself when it is installed)
NOT_IMPORTED = (
    "fastapi",
    "prometheus_client",
    "starlette",
    "uvicorn",
    "zoneinfo",
    "aioworker.dashboard",
    "aioworker.metrics",
)

EMPTY = {"complete": 0, "retry": 0, "dead": 0, "requeue": 0, "defer": 0, "lost": 0}


def test_import_leaves_extras_and_time_zones_unloaded() -> None:
    code = (
        "import sys, aioworker\n"
        f"names = {NOT_IMPORTED!r}\n"
        "print(' '.join(m for m in sys.modules if m.split('.')[0] in names or m in names))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == []


async def _results(values: list[Any]) -> list[Outcome]:
    w = Worker("redis://localhost:1/0")

    @w.task(name="give")
    async def give(ctx: JobContext, value: Any) -> Any:
        return value

    out = []
    for value in values:
        coro = give.fn(None, value)  # type: ignore[arg-type]
        out.append(
            await execute(
                give,
                coro,
                attempt=1,
                max_attempts=1,
                timeout_s=None,
                shutting_down=asyncio.Event(),
            )
        )
    return out


async def test_held_results_take_about_their_own_size() -> None:
    # a result waits in memory until its ack is written: 200 small ones must not hold
    # an encoder buffer each (4 KiB apiece, 800 KiB in all)
    values: list[Any] = [None if i % 2 else {"n": i} for i in range(200)]
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        outcomes = await _results(values)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert [o.kind for o in outcomes] == ["complete"] * 200
    assert outcomes[1].value == b"null" and outcomes[2].value == b'{"n":2}'
    assert held < 200 * 1024


async def test_fresh_contexts_do_not_share_steps_or_cursors() -> None:
    saved: list[bytes] = []

    async def saver(blob: bytes) -> bool:
        saved.append(blob)
        return True

    def fresh(job_id: str) -> JobContext:
        return JobContext(
            client=None,  # type: ignore[arg-type]
            job_id=job_id,
            task="t",
            queue="default",
            attempt=1,
            max_attempts=1,
            enqueued_ms=0,
            state=b"",
            saver=saver,
            shutting_down=asyncio.Event(),
        )

    async def one() -> int:
        return 1

    async def items(after: Any) -> Any:
        for i in (1, 2):
            yield i

    a, b = fresh("a"), fresh("b")
    assert await a.step("s", one) == 1
    assert [i async for i in a.iterate(items, key=lambda i: i)] == [1, 2]
    assert a.step_done("s") and a.cursor() == 2
    assert not b.step_done("s") and b.cursor() is None
    assert fresh("c").encoded_state() == b'{"u":null,"s":{},"c":{}}'
    assert not fresh("d").is_resumption


async def test_finished_jobs_are_freed_without_the_cyclic_collector(
    redis_url: str, prefix: str
) -> None:
    w = Worker(redis_url, prefix=prefix)

    @w.task(name="nap")
    async def nap(ctx: JobContext) -> None:
        await asyncio.sleep(0)

    await w.enqueue_many([nap.call() for _ in range(20)])
    gc.collect()
    gc.disable()
    try:
        assert await w.run(burst=True, handle_signals=False) == {**EMPTY, "complete": 20}
        left = [o for o in gc.get_objects() if isinstance(o, Running | JobContext)]
    finally:
        gc.enable()
        await w.close()
    assert left == []
