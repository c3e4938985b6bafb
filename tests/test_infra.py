"""The test fixtures themselves: servers answer, the cluster is whole, restarts keep data."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

from tests.redis_procs import CLUSTER_SLOTS, RedisFactory, RedisProcess, node_command
from tests.worker_procs import ROOT, ProcessSpawner, WorkerSpawner


async def test_redis_url_answers_ping(redis_url: str, prefix: str) -> None:
    async with redis.asyncio.Redis.from_url(redis_url) as client:
        assert await client.ping() is True
        key = f"{prefix}:ping"
        await client.set(key, b"pong", px=60_000)
        assert await client.get(key) == b"pong"


def test_prefix_is_fresh(prefix: str) -> None:
    assert prefix.startswith("t")
    assert len(prefix) == 11
    assert ":" not in prefix
    assert "{" not in prefix


def _slot_owners(port: int) -> dict[int, int]:
    """Map every assigned slot to the port of the master serving it, per CLUSTER SLOTS."""
    ranges: list[Any] = node_command(port, "CLUSTER", "SLOTS")
    owners: dict[int, int] = {}
    for entry in ranges:
        start, end, master = int(entry[0]), int(entry[1]), entry[2]
        for slot in range(start, end + 1):
            assert slot not in owners, f"slot {slot} is served twice"
            owners[slot] = int(master[1])
    return owners


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


@pytest.mark.cluster
def test_cluster_has_three_masters_covering_every_slot(redis_cluster_url: str) -> None:
    owners = _slot_owners(_port_of(redis_cluster_url))
    assert sorted(owners) == list(range(CLUSTER_SLOTS))
    masters = set(owners.values())
    assert len(masters) == 3

    nodes: bytes = node_command(_port_of(redis_cluster_url), "CLUSTER", "NODES")
    lines = nodes.decode().strip().splitlines()
    assert len(lines) == 3
    for line in lines:
        flags = line.split()[2].split(",")
        assert "master" in flags
        assert "slave" not in flags and "fail" not in flags


@pytest.mark.cluster
async def test_cluster_hash_tags_land_on_different_nodes(
    redis_cluster_url: str, prefix: str
) -> None:
    owners = _slot_owners(_port_of(redis_cluster_url))
    async with AsyncRedisCluster.from_url(redis_cluster_url) as cluster:
        # Pick one hash tag per master, so the keys must be spread over all three.
        key_by_owner: dict[int, tuple[str, int]] = {}
        for i in range(1000):
            key = f"{{{prefix}-q{i}}}:job"  # a hash tag no other test uses
            slot = cluster.keyslot(key)
            key_by_owner.setdefault(owners[slot], (key, slot))
            if len(key_by_owner) == 3:
                break
        assert len(key_by_owner) == 3

        for key, _slot in key_by_owner.values():
            await cluster.set(key, key.encode(), px=60_000)
        for key, _slot in key_by_owner.values():
            assert await cluster.get(key) == key.encode()

    # Ask each node directly: a key is stored on the master owning its slot and nowhere else
    # (other tests may keep keys in the same slot, so look for this key, not a count).
    for owner, (key, slot) in key_by_owner.items():
        for port in set(owners.values()):
            if port == owner:
                assert node_command(port, "EXISTS", key) == 1, (key, port)
            else:
                assert node_command(port, "CLUSTER", "COUNTKEYSINSLOT", slot) == 0, (key, port)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["term", "kill"])
async def test_redis_proc_restart_keeps_aof_writes(
    redis_proc: RedisProcess, prefix: str, sig: signal.Signals
) -> None:
    key = f"{prefix}:durable"
    async with redis.asyncio.Redis.from_url(redis_proc.url) as client:
        await client.set(key, b"kept")
    old_pid, old_url = redis_proc.pid, redis_proc.url
    assert old_pid is not None

    redis_proc.restart(sig)

    assert redis_proc.url == old_url
    assert redis_proc.pid is not None and redis_proc.pid != old_pid
    with pytest.raises(ProcessLookupError):
        os.kill(old_pid, 0)
    async with redis.asyncio.Redis.from_url(redis_proc.url) as client:
        assert await client.get(key) == b"kept"


@pytest.mark.slow
def test_redis_without_aof_forgets_on_kill(redis_factory: RedisFactory, prefix: str) -> None:
    # The counterpart of the test above: proves the AOF, not luck, is what keeps the key.
    server = redis_factory(aof=False)
    key = f"{prefix}:gone"
    assert node_command(server.port, "SET", key, "x")
    server.restart(signal.SIGKILL)
    assert node_command(server.port, "EXISTS", key) == 0
    server.stop()
    assert server.pid is None


@pytest.mark.slow
async def test_spawner_captures_output_beyond_pipe_size_and_kills_leftovers(
    tmp_path: Path,
) -> None:
    spawner = ProcessSpawner(tmp_path)
    script = (
        "import os, sys, time\n"
        "sys.stdout.write('x' * 300_000 + '\\n')\n"
        "print('cwd=' + os.getcwd())\n"
        "print('mark=' + os.environ['AIOWORKER_TEST_MARK'])\n"
        "print('path=' + os.environ['PYTHONPATH'])\n"
        "print('ready', file=sys.stderr)\n"
        "time.sleep(120)\n"
    )
    proc = spawner.spawn([sys.executable, "-c", script], env={"AIOWORKER_TEST_MARK": "m1"})
    try:
        output = await spawner.wait_for_output_async(proc, "ready")
        assert output.count("x") >= 300_000
        assert f"cwd={ROOT}" in output
        assert "mark=m1" in output
        assert f"path={ROOT}" in output
        assert proc.poll() is None
    finally:
        spawner.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
async def test_spawn_worker_runs_the_cli_module(spawn_worker: WorkerSpawner) -> None:
    proc = spawn_worker("tests.apps.missing:worker", "--concurrency", "2")
    assert proc.args == [
        sys.executable,
        "-m",
        "aioworker",
        "run",
        "tests.apps.missing:worker",
        "--concurrency",
        "2",
    ]
    # The app does not exist, so whatever state the CLI is in, the process must end by itself.
    code = await spawn_worker.wait_exit(proc, timeout_s=60)
    assert code != 0, spawn_worker.output(proc)
