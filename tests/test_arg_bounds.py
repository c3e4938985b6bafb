"""No command sent to Redis has more than 3,999 arguments (ElastiCache Serverless refuses
more), whatever the size of a bulk call: checked on every command a real ``redis-cli
MONITOR`` sees while the bulk paths run, and every job counted."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aioworker import JobContext, Unique
from aioworker.admin import Admin
from aioworker.groups import Groups
from aioworker.keys import QueueKeys, RegistryKeys
from aioworker.limits import Concurrent
from tests.redis_procs import RedisFactory, RedisProcess, cli_binary, missing_binaries
from tests.worker_kit import MakeWorker, burst

N = 2000
#: ElastiCache Serverless refuses a request with more words than this.
MAX_ARGS = 3999
_QUOTED = re.compile(rb'"(?:[^"\\]|\\.)*"')
_CLIENT = re.compile(rb"^\d+\.\d+ \[\d+ ([^\]]+)\] ")


@pytest.fixture
def server(redis_factory: RedisFactory) -> RedisProcess:
    """A server of this test alone, so MONITOR sees this test's commands only."""
    if missing := missing_binaries(cli_binary()):
        pytest.skip(f"{', '.join(missing)} not found on PATH")
    return redis_factory()


@pytest.fixture
def worker_url(server: RedisProcess) -> str:
    return server.url


class Monitor:
    """``redis-cli MONITOR`` writing every command the server receives to a file."""

    def __init__(self, port: int, path: Path) -> None:
        self.path = path
        self._out = path.open("wb")
        self.proc = subprocess.Popen(
            [cli_binary(), "-p", str(port), "monitor"], stdout=self._out, stderr=subprocess.STDOUT
        )
        self._port = port
        self._wait_for(b"OK")

    def _wait_for(self, marker: bytes, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while marker not in self.path.read_bytes():
            assert self.proc.poll() is None, self.path.read_bytes()[-2000:]
            assert time.monotonic() < deadline, f"MONITOR never showed {marker!r}"
            time.sleep(0.02)

    def stop(self) -> None:
        """Wait until MONITOR has shown everything sent so far, then stop it."""
        subprocess.run([cli_binary(), "-p", str(self._port), "echo", "monitor-end"], check=True)
        self._wait_for(b'"monitor-end"')
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self._out.close()

    def requests(self) -> Iterator[tuple[bytes, int]]:
        """``(command name, number of words)`` of every request a client sent (not the
        commands scripts ran inside the server)."""
        for line in self.path.read_bytes().splitlines():
            m = _CLIENT.match(line)
            if m is None or m.group(1) == b"lua":
                continue
            words = _QUOTED.findall(line, m.end())
            yield words[0].strip(b'"').lower(), len(words)


@pytest.fixture
def monitor(server: RedisProcess, tmp_path: Path) -> Iterator[Monitor]:
    m = Monitor(server.port, tmp_path / "monitor.log")
    try:
        yield m
    finally:
        if m.proc.poll() is None:
            m.proc.kill()
            m.proc.wait(timeout=10)


async def test_every_bulk_path_stays_within_max_args(
    make_worker: MakeWorker, monitor: Monitor, prefix: str
) -> None:
    w = make_worker(queues={"default": 200})
    ran: list[int] = []

    @w.task(name="ok")
    async def ok(ctx: JobContext, n: int) -> int:
        ran.append(n)
        return n

    @w.task(name="boom", retries=0)
    async def boom(ctx: JobContext, n: int) -> None:
        raise ValueError(n)

    # 2,000 jobs with chosen ids, 2,000 unique jobs, 2,000 grouped unique jobs with ids
    with_ids = await w.enqueue_many(
        [ok.options(job_id=f"id-{n}", queue="ids").call(n) for n in range(N)]
    )
    unique = await w.enqueue_many(
        [ok.options(unique=Unique(key=f"u-{n}"), queue="uniq").call(n) for n in range(N)]
    )
    grouped = await w.enqueue_many(
        [
            ok.options(
                job_id=f"g-{n}", unique=Unique(key=f"g-{n}"), group=f"t{n % 7}", queue="grp"
            ).call(n)
            for n in range(N)
        ]
    )
    assert sum(h.created for h in with_ids + unique + grouped) == 3 * N
    # a batch of 2,000 children
    async with w.batch(description="big") as batch:
        assert await batch.add(ok.options(queue="batch").call(n) for n in range(N)) == N
    # 2,000 dead letters, revived and purged by explicit ids, in one call each
    dead = await w.enqueue_many([boom.options(queue="dead").call(n) for n in range(N)])
    stats = await burst(w, queues=["dead"])
    assert stats["dead"] == N
    dead_ids = [h.id for h in dead]
    admin = Admin(w)
    assert await admin.retry_dead("dead", dead_ids) == N
    assert (await w.client.counts("dead"))["ready"] == N
    assert (await burst(w, queues=["dead"]))["dead"] == N
    assert await w.client.retry_dead("dead", dead_ids) == N
    assert (await burst(w, queues=["dead"]))["dead"] == N
    assert await admin.purge_dead("dead", dead_ids) == N
    # the other jobs run: acks of many jobs at once
    stats = await burst(w, queues=["ids", "uniq", "grp", "batch"])
    assert stats["complete"] == 4 * N
    assert sorted(ran) == sorted(list(range(N)) * 4)
    assert (await batch.progress()).total == N  # (its counters follow through the outbox)

    # wrappers that take lists of any length, called with more than fit in one command
    scripts = w.client.broker.scripts
    k = QueueKeys(prefix, "ids")
    held = [(f"x-{n}", "token") for n in range(3 * N)]
    assert len(await scripts.extend(k, 1000, held)) == 3 * N  # none was leased: all lost
    assert await scripts.complete(k, 1000, [(f"x-{n}", "t", b"1") for n in range(N)]) == [False] * N
    limiter = Concurrent("arity", 5, on=w)
    assert len(await limiter.extend([f"tok-{n}" for n in range(3 * N)])) == 3 * N
    progress = await Groups(w, "grp").progress_many([f"t{n}" for n in range(3 * N)])
    assert sum(p.done for p in progress.values()) == N
    names = [f"q{n}" for n in range(3 * N)]
    await w.client.register_queues(names)
    assert await w.client.broker.scripts.run("queues", [RegistryKeys(prefix).queues], []) != []
    await asyncio.sleep(0)

    monitor.stop()
    counts: dict[bytes, int] = {}
    biggest: dict[bytes, int] = {}
    for name, words in monitor.requests():
        counts[name] = counts.get(name, 0) + 1
        biggest[name] = max(biggest.get(name, 0), words)
    over = {name: n for name, n in biggest.items() if n > MAX_ARGS}
    assert not over, over
    assert counts.get(b"evalsha", 0) > 100, counts  # the script calls were seen
    # the bulk calls were cut no finer than needed: a 2,000-job call with ids is 2 calls
    assert biggest[b"evalsha"] > MAX_ARGS - 20, biggest
