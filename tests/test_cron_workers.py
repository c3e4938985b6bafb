"""Periodic jobs across real worker processes: one job per tick, leader failover and
hand-over, and the ``aioworker cron`` command."""

from __future__ import annotations

import asyncio
import logging
import signal
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
import redis.asyncio

from aioworker.cli import main
from aioworker.keys import QueueKeys
from tests.apps import cron_app
from tests.worker_procs import WorkerSpawner

APP = "tests.apps.cron_app:worker"
ELECTED = "is now the leader of 'cron'"
LEASE_S = 3.0

Raw = redis.asyncio.Redis | redis.asyncio.RedisCluster


@pytest.fixture(params=["single", pytest.param("cluster", marks=pytest.mark.cluster)])
def url(request: pytest.FixtureRequest) -> str:
    name = "redis_url" if request.param == "single" else "redis_cluster_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
async def raw(url: str) -> AsyncIterator[Raw]:
    """A plain client of the test's Redis (cluster-aware), to read what the jobs recorded."""
    async with redis.asyncio.Redis.from_url(url) as probe:
        cluster = bool((await probe.info("cluster")).get("cluster_enabled"))
    client: Raw = (
        redis.asyncio.RedisCluster.from_url(url) if cluster else redis.asyncio.Redis.from_url(url)
    )
    try:
        yield client
    finally:
        await client.aclose()


def _env(url: str, prefix: str, lease_s: float = LEASE_S) -> dict[str, str]:
    return {"AIOWORKER_REDIS_URL": url, "TEST_PREFIX": prefix, "TEST_LEASE_S": str(lease_s)}


async def _runs(raw: Raw, prefix: str, kind: str) -> dict[int, int]:
    data = await raw.hgetall(cron_app.runs_key(prefix, kind))
    out: dict[int, int] = {}
    for k, v in data.items():
        key = k.decode() if isinstance(k, bytes) else k
        if not key.startswith("now:"):
            out[int(key)] = int(v)
    return out


async def _redis_ms(raw: Raw) -> int:
    seconds, micros = await raw.time()
    return int(seconds) * 1000 + int(micros) // 1000


async def _leader(
    spawner: WorkerSpawner, procs: list[subprocess.Popen[bytes]], timeout_s: float
) -> subprocess.Popen[bytes]:
    """The one process (of ``procs``) whose output says it was elected."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        elected = [p for p in procs if ELECTED in spawner.output(p)]
        if elected:
            assert len(elected) == 1, [spawner.output(p) for p in elected]
            return elected[0]
        await asyncio.sleep(0.05)
    raise AssertionError("no leader elected:\n" + "\n".join(spawner.output(p) for p in procs))


async def _wait_ticks(raw: Raw, prefix: str, until_ms: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        runs = await _runs(raw, prefix, "ticks")
        if runs and max(runs) >= until_ms:
            return
        assert time.monotonic() < deadline, f"ticks stopped at {max(runs, default=None)}"
        await asyncio.sleep(0.1)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _contiguous(ticks: list[int]) -> bool:
    return ticks == list(range(ticks[0], ticks[-1] + 1000, 1000))


@pytest.mark.slow
async def test_three_workers_run_every_tick_once_through_a_leader_crash(
    spawn_worker: WorkerSpawner, url: str, raw: Raw, prefix: str
) -> None:
    procs = [spawn_worker(APP, env=_env(url, prefix)) for _ in range(3)]
    leader = await _leader(spawn_worker, procs, 20)
    started_ms = await _redis_ms(raw)

    # about ten seconds of a 1-second schedule with three workers
    await _wait_ticks(raw, prefix, started_ms + 10_000, 30)
    first = await _runs(raw, prefix, "ticks")
    ticks = sorted(first)
    assert len(ticks) >= 10 and _contiguous(ticks), ticks
    assert all(n == 1 for n in first.values()), first

    # kill the leader: another process is elected within the failover bound
    leader.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    killed_ms = await _redis_ms(raw)
    rest = [p for p in procs if p is not leader]
    new_leader = await _leader(spawn_worker, rest, LEASE_S + 10)
    failover_s = time.monotonic() - killed
    assert failover_s < LEASE_S + 1 + 2  # ttl + one poll, plus slack for a busy machine
    await _wait_ticks(raw, prefix, killed_ms + 5_000, 30)

    for p in rest:
        p.send_signal(signal.SIGTERM)
    for p in rest:
        assert await spawn_worker.wait_exit(p, timeout_s=20) == 0, spawn_worker.output(p)

    ran = await _runs(raw, prefix, "ticks")
    reruns = await _runs(raw, prefix, "reruns")
    # a tick job the killed worker was running when it died is run again by another one
    # (at-least-once execution of a job); only such ticks may have a second run
    assert len(reruns) <= 2 and all(t <= killed_ms + 1000 for t in reruns), reruns
    assert all(n == 1 for n in ran.values()), ran
    assert all(n == 1 for n in reruns.values()), reruns
    # every tick from the first to the last enqueued one has exactly one job: none lost
    # during the failover (late ticks within the grace still run), none doubled
    k = QueueKeys(prefix, "default")
    queued = [_text(i) for i in await raw.lrange(k.ready, 0, -1)]
    left = [int(i.rsplit(":", 1)[1]) for i in queued]
    everything = sorted(set(ran) | set(reruns) | set(left))
    assert len(everything) == len(set(ran) | set(reruns)) + len(left), "a queued tick also ran"
    assert _contiguous(everything), everything
    assert everything[-1] >= killed_ms + 5_000
    marker = await raw.hget(k.cron("every-second"), "last")
    assert marker is not None and int(marker) == everything[-1]
    assert "lost the leadership" not in spawn_worker.output(new_leader)


@pytest.mark.slow
async def test_a_leader_shutting_down_hands_over_at_once(
    spawn_worker: WorkerSpawner, redis_url: str, prefix: str
) -> None:
    # a lease of 30 s: a takeover within a few seconds can only come from a step-down
    procs = [spawn_worker(APP, env=_env(redis_url, prefix, lease_s=30)) for _ in range(2)]
    leader = await _leader(spawn_worker, procs, 20)
    await asyncio.sleep(1.5)
    leader.send_signal(signal.SIGTERM)
    stopped = time.monotonic()
    assert await spawn_worker.wait_exit(leader, timeout_s=20) == 0
    assert "stepped down as the leader of 'cron'" in spawn_worker.output(leader)
    (other,) = [p for p in procs if p is not leader]
    await _leader(spawn_worker, [other], 10)
    assert time.monotonic() - stopped < 5
    await asyncio.sleep(2)
    other.send_signal(signal.SIGTERM)
    assert await spawn_worker.wait_exit(other, timeout_s=20) == 0
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        runs = await _runs(r, prefix, "ticks")
    ticks = sorted(runs)
    assert _contiguous(ticks) and all(n == 1 for n in runs.values()), runs


# -- the command line ---------------------------------------------------------------------


async def _cli(capsys: pytest.CaptureFixture[str], url: str, prefix: str, *argv: str) -> Any:
    """Run ``aioworker cron ...`` in-process (in a thread, like the real CLI's own loop)."""
    capsys.readouterr()
    cron_app.worker = cron_app.build(url, prefix)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = await asyncio.to_thread(main, ["cron", *argv])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_cron_command_lists_pauses_resumes_and_runs(
    url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await _cli(capsys, url, prefix, "list", APP)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "NAME", "SCHEDULE", "TZ", "QUEUE", "STATE", "LAST", "TICK", "(UTC)", "NEXT", "RUN", "(UTC)"
    ]  # fmt: skip
    assert lines[1].split()[:6] == ["every-second", "every", "1", "s", "-", "default"]
    assert lines[2].split()[:7] == ["monthly-tokyo", "0", "3", "1", "*", "*", "Asia/Tokyo"]

    code, out, _ = await _cli(capsys, url, prefix, "pause", APP, "every-second")
    assert code == 0 and out.startswith("schedule every-second paused since ")
    code, out, _ = await _cli(capsys, url, prefix, "list", APP, "--json")
    listed = {s["name"]: s for s in orjson.loads(out)}
    assert listed["every-second"]["paused_at"] is not None
    assert listed["every-second"]["next_run"] is None
    assert listed["monthly-tokyo"]["paused_at"] is None

    code, out, _ = await _cli(capsys, url, prefix, "run", APP, "every-second", "--json")
    assert code == 0
    job_id = orjson.loads(out)["job_id"]
    assert job_id.startswith("cron:every-second:") and ":now-" in job_id
    w = cron_app.build(url, prefix)
    try:
        assert (await w.job(job_id).status()).value == "queued"
        code, out, _ = await _cli(capsys, url, prefix, "resume", APP, "every-second")
        assert code == 0 and out.startswith("schedule every-second resumed; next run ")
        assert not (await w.scheduler.info("every-second")).paused
    finally:
        await w.close()

    code, _, err = await _cli(capsys, url, prefix, "pause", APP)
    assert code == 2 and "aioworker cron pause needs the schedule's name" in err
    code, _, err = await _cli(capsys, url, prefix, "run", APP, "nope")
    assert code == 1 and "no schedule named 'nope' (known: every-second, monthly-tokyo)" in err
