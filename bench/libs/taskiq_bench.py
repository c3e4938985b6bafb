"""taskiq with taskiq-redis under the shared benchmark driver.

taskiq has no bulk enqueue, so the producer gathers ``kiq()`` calls. The
worker is taskiq's own ``Receiver``, run the way one ``taskiq worker`` process
runs it (startup, then ``listen`` until a shutdown event), with
``max_async_tasks`` as its concurrency.

taskiq-redis has two brokers that deliver each job once: ``RedisStreamBroker``
(the default here and in taskiq-redis's docs; acknowledged, reads up to 100
messages per XREADGROUP) and ``ListQueueBroker`` (``--variant list``; LPUSH and
one BRPOP per message, no acknowledgement). Neither is faster in every
scenario, so the benchmark runs both. On a Redis Cluster each is replaced by
its cluster twin (``RedisStreamClusterBroker``, ``ListQueueClusterBroker``).
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version

import _harness
from taskiq.receiver import Receiver
from taskiq_redis import (
    ListQueueBroker,
    ListQueueClusterBroker,
    RedisStreamBroker,
    RedisStreamClusterBroker,
)

ENQUEUE_IN_FLIGHT = 200
BROKERS = {"": RedisStreamBroker, "stream": RedisStreamBroker, "list": ListQueueBroker}
CLUSTER_BROKERS = {
    RedisStreamBroker: RedisStreamClusterBroker,
    ListQueueBroker: ListQueueClusterBroker,
}


def build(opts: _harness.Options) -> _harness.Library:
    broker_cls = BROKERS[opts.variant]
    if _harness.is_cluster(opts.redis_url):
        broker_cls = CLUSTER_BROKERS[broker_cls]
    broker = broker_cls(url=opts.redis_url)

    @broker.task(task_name="noop")
    async def noop() -> None:
        _harness.job_done()

    @broker.task(task_name="sleepy")
    async def sleepy(seconds: float) -> None:
        _harness.job_started()
        await asyncio.sleep(seconds)
        _harness.job_done()

    @broker.task(task_name="stamp")
    async def stamp(enqueued_at: float) -> None:
        _harness.job_stamp(enqueued_at)

    async def enqueue() -> None:
        await broker.startup()
        if opts.scenario == "pickup":
            try:
                await _harness.paced(opts, stamp.kiq)
            finally:
                await broker.shutdown()
            return
        limit = asyncio.Semaphore(ENQUEUE_IN_FLIGHT)

        async def one() -> None:
            async with limit:
                if opts.scenario == "noop":
                    await noop.kiq()
                else:
                    await sleepy.kiq(opts.sleep_s)

        try:
            await asyncio.gather(*(one() for _ in range(opts.jobs)))
        finally:
            await broker.shutdown()

    async def work(done: _harness.Completions) -> None:
        # what `taskiq worker` does in each worker process, minus signals
        broker.is_worker_process = True
        shutdown = asyncio.Event()
        with ThreadPoolExecutor() as pool:
            receiver = Receiver(broker, executor=pool, max_async_tasks=opts.concurrency)
            listener = asyncio.create_task(receiver.listen(shutdown))
            try:
                await done.event.wait()
                shutdown.set()
                await listener
            finally:
                listener.cancel()
                await broker.shutdown()

    return _harness.Library(
        name="taskiq-list" if opts.variant == "list" else "taskiq",
        version=f"{version('taskiq')} (taskiq-redis {version('taskiq-redis')})",
        settings={
            "broker": broker_cls.__name__,
            "max_async_tasks": opts.concurrency,
            "other": "defaults (max_prefetch=0, ack when saved, no result backend)",
            "enqueue": f"asyncio.gather of kiq(), {ENQUEUE_IN_FLIGHT} in flight",
            "loop": "uvloop",
        },
        enqueue=enqueue,
        work=work,
    )


if __name__ == "__main__":
    _harness.main(build)
