"""Start-up checks of the server: version, the permissions scripts need, eviction policy."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aioworker import JobContext, RedisAccessDenied, UnsupportedServer, Worker
from aioworker.server_checks import ServerVersion, check_version, parse_version
from tests.redis_procs import RedisProcess, missing_binaries

pytestmark = pytest.mark.skipif(bool(missing_binaries("redis-server")), reason="needs redis-server")


@pytest.mark.parametrize(
    ("info", "refused"),
    [
        ({"redis_version": "6.0.9"}, "Redis 6.0.9 is too old: aioworker needs 6.2 or newer"),
        ({"redis_version": "5.0.14"}, "Redis 5.0.14 is too old"),
        ({"redis_version": "6.2.0"}, None),
        ({"redis_version": "7.4.1"}, None),
        ({"server": "redis", "version": "6.0.20"}, "Redis 6.0.20 is too old"),
        ({"server": "valkey", "version": "7.0.2"}, "Valkey 7.0.2 is too old: aioworker needs 7.2"),
        ({"server_name": "valkey", "redis_version": "7.2.4", "valkey_version": "8.1.0"}, None),
        ({"server": "valkey", "version": "7.2.5"}, None),
    ],
)
def test_servers_older_than_redis_6_2_or_valkey_7_2_are_refused(
    info: dict[str, str], refused: str | None
) -> None:
    server = parse_version(info)
    if refused is None:
        check_version(server)
    else:
        with pytest.raises(UnsupportedServer, match=refused.replace(".", r"\.")):
            check_version(server)


def _acl_server(tmp_path: Path, rules: str) -> RedisProcess:
    acl = tmp_path / "users.acl"
    acl.write_text(f"user default on nopass +@all ~* &*\nuser app on >app-pw {rules}\n")
    server = RedisProcess(tmp_path, extra_args=["--aclfile", str(acl)])
    server.start()
    return server


def _url(server: RedisProcess) -> str:
    return f"redis://app:app-pw@127.0.0.1:{server.port}/0"


async def _run_one(url: str, prefix: str) -> int:
    worker = Worker(url, prefix=prefix)

    @worker.task(name="add")
    async def add(ctx: object, a: int, b: int) -> int:
        return a + b

    try:
        job = await worker.enqueue("add", 2, 3)
        stats = await worker.run(burst=True, handle_signals=False)
        assert stats["complete"] == 1
        return int(await job.result(timeout=5))
    finally:
        await worker.close()


async def test_without_info_or_config_the_version_comes_from_hello_and_jobs_run(
    tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = _acl_server(tmp_path, "~* &* +@all -info -config")
    try:
        with caplog.at_level(logging.WARNING, logger="aioworker"):
            assert await _run_one(_url(server), prefix) == 5
        assert not [r for r in caplog.records if "maxmemory" in r.getMessage()]
    finally:
        server.stop()


async def test_a_user_who_may_not_run_evalsha_is_told_so_in_one_line(
    tmp_path: Path, prefix: str
) -> None:
    server = _acl_server(tmp_path, "~* &* +@all -evalsha")
    try:
        worker = Worker(_url(server), prefix=prefix)
        with pytest.raises(RedisAccessDenied, match="may not run EVALSHA") as caught:
            await worker.client.broker.connect()
        assert "app-pw" not in str(caught.value)
        await worker.close()
        proc = subprocess.run(  # noqa: ASYNC221 - the CLI as a user runs it
            [sys.executable, "-m", "aioworker", "info", "tests.apps.basic:worker"],
            env={**os.environ, "AIOWORKER_REDIS_URL": _url(server)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 3, proc.stderr
        assert "may not run EVALSHA" in proc.stderr and "Traceback" not in proc.stderr
    finally:
        server.stop()


async def test_an_evicting_policy_is_warned_about_at_start_up(
    tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisProcess(tmp_path, extra_args=["--maxmemory-policy", "allkeys-lru"])
    server.start()
    try:
        with caplog.at_level(logging.WARNING, logger="aioworker"):
            assert await _run_one(server.url, prefix) == 5
        warned = [r.getMessage() for r in caplog.records if "maxmemory-policy" in r.getMessage()]
        assert len(warned) == 1 and "allkeys-lru" in warned[0]
    finally:
        server.stop()


class _OldServer(RedisProcess):
    def __init__(self, directory: Path, binary: str) -> None:
        super().__init__(directory)
        self.binary = binary

    def argv(self) -> list[str]:
        return [self.binary, *super().argv()[1:]]


async def test_a_server_older_than_6_2_is_refused_by_worker_and_producer(
    tmp_path: Path, prefix: str
) -> None:
    binary = os.environ.get("AIOWORKER_OLD_REDIS_SERVER")
    if not binary:
        if os.environ.get("CI"):  # .ci/run builds one: a missing server is a CI defect
            pytest.fail("AIOWORKER_OLD_REDIS_SERVER is not set (.ci/servers.py --old)")
        pytest.skip("set AIOWORKER_OLD_REDIS_SERVER to a redis-server older than 6.2")
    server = _OldServer(tmp_path, binary)
    server.start()
    try:
        worker = Worker(server.url, prefix=prefix)

        @worker.task()
        async def anything(ctx: JobContext) -> None: ...

        with pytest.raises(UnsupportedServer, match=r"is too old: aioworker needs 6\.2 or newer"):
            await anything.enqueue()
        with pytest.raises(UnsupportedServer):
            await worker.run(burst=True, handle_signals=False)
        await worker.close()
    finally:
        server.stop()


def test_the_version_is_shown_as_name_and_number() -> None:
    assert str(ServerVersion("valkey", "8.1.0")) == "Valkey 8.1.0"
