"""streaq under the shared benchmark driver.

streaq's bulk path is ``Worker.enqueue_many``, which publishes every task in
one pipeline. The worker runs with ``concurrency`` consumers and the default
prefetch, in burst mode so it returns once the stream is drained. On a Redis
Cluster it is given the nodes (``cluster_nodes``), as streaq asks.
"""

from __future__ import annotations

import asyncio
import contextlib
from importlib.metadata import version

import _harness
from streaq import Worker


def build(opts: _harness.Options) -> _harness.Library:
    # streaq takes a cluster as a list of nodes instead of its URL, and its
    # scripts touch several keys named after the queue: a hash tag in the
    # queue name puts them in one slot
    cluster = _harness.is_cluster(opts.redis_url)
    where = (
        {"cluster_nodes": _harness.redis_nodes(opts.redis_url), "queue_name": "{default}"}
        if cluster
        else {"redis_url": opts.redis_url}
    )
    worker = Worker(**where, concurrency=opts.concurrency, handle_signals=False)

    @worker.task(name="noop")
    async def noop() -> None:
        _harness.job_done()

    @worker.task(name="sleepy")
    async def sleepy(seconds: float) -> None:
        _harness.job_started()
        await asyncio.sleep(seconds)
        _harness.job_done()

    @worker.task(name="stamp")
    async def stamp(enqueued_at: float) -> None:
        _harness.job_stamp(enqueued_at)

    async def enqueue() -> None:
        if opts.scenario == "pickup":
            async with worker:
                await _harness.paced(opts, lambda at: stamp.enqueue(at))
            return
        if opts.scenario == "noop":
            tasks = [noop.enqueue() for _ in range(opts.jobs)]
        else:
            tasks = [sleepy.enqueue(opts.sleep_s) for _ in range(opts.jobs)]
        async with worker:
            await worker.enqueue_many(tasks)

    async def work(done: _harness.Completions) -> None:
        # an idle worker waiting for jobs must not leave when the stream is empty
        worker.burst = opts.scenario != "pickup"
        runner = asyncio.create_task(worker.run_async())
        try:
            await done.event.wait()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(runner), 10)
        finally:
            if not runner.done():
                runner.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await runner

    return _harness.Library(
        name="streaq",
        version=version("streaq"),
        settings={
            "concurrency": opts.concurrency,
            "prefetch": worker.prefetch,
            "burst": opts.scenario != "pickup",
            "other": "defaults (max_tries=3, result ttl=5 min, pickle)",
            "enqueue": "Worker.enqueue_many (one pipeline)",
            **({"cluster": "cluster_nodes=the masters, queue_name='{default}'"} if cluster else {}),
            "loop": "uvloop",
        },
        enqueue=enqueue,
        work=work,
    )


if __name__ == "__main__":
    _harness.main(build)
