"""Fixtures shared by the whole suite.

- ``redis_url``: one throwaway ``redis-server`` for the test run.
- ``redis_cluster_url``: one throwaway three-master cluster for the test run.
- ``redis_cluster_replicated``: a six-node cluster (three masters, one replica each) of the
  test alone, which it may fail over and reshard (``tests/redis_topologies.py``).
- ``redis_proc``: a fresh AOF-backed server per test, for tests that kill and restart Redis;
  ``redis_factory(aof=...)`` starts more of them.
- ``prefix``: a unique key prefix per test, so no test ever flushes a database.
- ``spawn_worker``: runs ``python -m aioworker run <app>`` as a child process.
- ``make_worker``: makes in-process workers on ``worker_url`` (``redis_url`` unless a module
  overrides it) and the test's prefix, with short leases and backoffs; closed at teardown.

Without the Redis binaries the Redis fixtures skip, except when ``CI`` is set: there a missing
binary fails the run instead of hiding every test behind a skip.

:data:`MATRIX_MODULES` are the modules ``make test-matrix`` runs again on every other supported
server build (``.ci/matrix.sh``): single node and the cluster fixture, job lifecycle, scripts,
limits, Redis faults, and failover and slot migration under load.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.redis_procs import (
    RedisCluster,
    RedisFactory,
    RedisProcess,
    cli_binary,
    missing_binaries,
    server_binary,
)
from tests.redis_topologies import ReplicatedCluster
from tests.worker_kit import MakeWorker, worker_factory
from tests.worker_procs import WorkerSpawner

#: Test modules ``make test-matrix`` runs on each server in ``.ci/servers.py``.
MATRIX_MODULES = (
    "tests/test_enqueue.py",
    "tests/test_retries.py",
    "tests/test_delays.py",
    "tests/test_timeouts.py",
    "tests/test_groups.py",
    "tests/test_cluster.py",
    "tests/test_limits.py",
    "tests/test_redis_errors.py",
    "tests/test_redis_faults.py",
    "tests/test_fault_cluster.py",
    "tests/test_fault_promote.py",
    "tests/test_scripts_invariants.py",
    "tests/test_server_checks.py",
    "tests/test_acl_rules.py",
    "tests/test_connections.py",
    "tests/test_lua_*.py",
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _require(*binaries: str) -> None:
    missing = missing_binaries(*binaries)
    if not missing:
        return
    reason = f"{', '.join(missing)} not found on PATH"
    if _in_ci():
        pytest.fail(f"{reason} (required when CI is set)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of database 0 on a ``redis-server`` shared by the whole test run."""
    _require(server_binary())
    server = RedisProcess(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of one node (a startup node) of a three-master cluster shared by the test run."""
    _require(server_binary(), cli_binary())
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    cluster.start()
    try:
        yield cluster.url
    finally:
        cluster.stop()


@pytest.fixture
def redis_cluster_replicated(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ReplicatedCluster]:
    """Three masters with one replica each, of this test alone; stopped at teardown."""
    _require(server_binary(), cli_binary())
    cluster = ReplicatedCluster(tmp_path_factory.mktemp("redis-cluster-replicated"))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def redis_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisFactory]:
    """Start servers of this test alone with ``redis_factory(aof=True|False)``.

    Each has its own port and directory; all are stopped at teardown whatever state they are in.
    """
    _require(server_binary())
    servers: list[RedisProcess] = []

    def start(*, aof: bool = False) -> RedisProcess:
        server = RedisProcess(tmp_path_factory.mktemp("redis-proc"), aof=aof)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def redis_proc(redis_factory: RedisFactory) -> RedisProcess:
    """A running ``redis-server`` of this test alone, with an fsync-always AOF.

    Tests may stop, kill and restart it; it is stopped at teardown whatever state it is in.
    """
    return redis_factory(aof=True)


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test uses."""
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def spawn_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerSpawner]:
    """Start workers with ``spawn_worker("tests.apps.x:worker", *args, env={...})``.

    ``spawn_worker.output(proc)`` reads a worker's output; any worker still running at
    teardown is killed.
    """
    spawner = WorkerSpawner(tmp_path_factory.mktemp("workers"))
    try:
        yield spawner
    finally:
        spawner.close()


@pytest.fixture
def worker_url(redis_url: str) -> str:
    """The server ``make_worker`` connects to; a module may override it (e.g. with a cluster)."""
    return redis_url


@pytest.fixture
async def make_worker(worker_url: str, prefix: str) -> AsyncIterator[MakeWorker]:
    """Workers on this test's prefix with short leases and backoffs; closed at teardown."""
    async with worker_factory(worker_url, prefix) as make:
        yield make
