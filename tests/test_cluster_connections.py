"""On a cluster, callers wait for a free connection as on a single node; the mode is settable."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from aioworker import ConfigError, JobContext, Worker
from aioworker.cli.common import load_worker
from aioworker.worker import cluster_from_env
from tests.worker_kit import burst

WAITERS = 2000


@pytest.mark.cluster
async def test_two_thousand_result_waits_on_a_cluster_share_a_small_pool(
    redis_cluster_url: str, prefix: str
) -> None:
    runner = Worker(redis_cluster_url, prefix=prefix, cluster=True, queues={"default": 200})
    producer = Worker(
        redis_cluster_url, prefix=prefix, cluster=True, redis_options={"max_connections": 20}
    )

    @runner.task(name="square")
    async def square(ctx: JobContext, n: int) -> int:
        return n * n

    try:
        handles = await runner.enqueue_many([square.call(n) for n in range(WAITERS)])
        waits = [producer.job(h.id).result(timeout=60) for h in handles]
        waiting = asyncio.gather(*waits, return_exceptions=True)
        await asyncio.sleep(0.2)  # the waits are queued on the pool before any job runs
        stats = await burst(runner, timeout_s=60)
        results = await asyncio.wait_for(waiting, 90)
        errors = [r for r in results if isinstance(r, BaseException)]
        assert errors == []
        assert results == [n * n for n in range(WAITERS)]
        assert stats["complete"] == WAITERS
    finally:
        await producer.close()
        await runner.close()


def test_the_cluster_mode_comes_from_the_option_the_variable_or_the_cli(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AIOWORKER_CLUSTER", raising=False)
    assert cluster_from_env() is None and Worker().cluster is None
    for raw, want in (("1", True), ("true", True), ("no", False), ("0", False)):
        monkeypatch.setenv("AIOWORKER_CLUSTER", raw)
        assert cluster_from_env() is want
        assert Worker().cluster is want
    assert Worker(cluster=True).cluster is True  # the option wins over the variable
    monkeypatch.setenv("AIOWORKER_CLUSTER", "maybe")
    with pytest.raises(ConfigError, match="AIOWORKER_CLUSTER"):
        Worker()
    monkeypatch.delenv("AIOWORKER_CLUSTER")
    args = argparse.Namespace(app="tests.apps.basic:worker", redis_url=None, cluster=True)
    assert load_worker(args).cluster is True
