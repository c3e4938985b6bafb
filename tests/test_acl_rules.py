"""The ACL rules the README documents are enough: a worker and a producer run 50 jobs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from aioworker import JobContext, Worker
from tests.redis_procs import HOST, RedisProcess, missing_binaries

pytestmark = pytest.mark.skipif(bool(missing_binaries("redis-server")), reason="needs redis-server")

README = Path(__file__).resolve().parent.parent / "README.md"
JOBS = 50


def readme_rules() -> dict[str, list[str]]:
    """``user -> ACL SETUSER words`` for every ``ACL SETUSER`` line of the README."""
    rules: dict[str, list[str]] = {}
    for line in README.read_text().splitlines():
        if re.match(r"^ACL SETUSER aioworker-\w+ ", line):
            words = line.split()
            rules[words[2]] = words[2:]
    return rules


def test_the_readme_documents_a_worker_and_a_producer_rule() -> None:
    assert set(readme_rules()) == {"aioworker-worker", "aioworker-producer"}


async def test_the_readme_acl_rules_run_jobs(tmp_path: Path, prefix: str) -> None:
    server = RedisProcess(tmp_path)
    server.start()
    admin = redis.Redis(host=HOST, port=server.port)
    try:
        for user, words in readme_rules().items():
            words = [
                ">pw-" + user if w == ">CHANGE-ME" else f"~{prefix}:*" if w == "~aioworker:*" else w
                for w in words
            ]
            admin.execute_command("ACL", "SETUSER", *words)  # type: ignore[no-untyped-call]

        def url(user: str) -> str:
            return f"redis://{user}:pw-{user}@127.0.0.1:{server.port}/0"

        worker = Worker(url("aioworker-worker"), prefix=prefix, queues={"default": 10})
        producer = Worker(url("aioworker-producer"), prefix=prefix)

        for w in (worker, producer):

            @w.task(name="triple")
            async def triple(ctx: JobContext, n: int) -> int:
                return 3 * n

        try:
            handles = await producer.enqueue_many(
                [producer.tasks["triple"].call(n) for n in range(JOBS)]
            )
            stats = await worker.run(burst=True, handle_signals=False)
            assert stats["complete"] == JOBS and stats["dead"] == 0 and stats["retry"] == 0
            assert [await h.result(timeout=10) for h in handles] == [3 * n for n in range(JOBS)]
        finally:
            await producer.close()
            await worker.close()
    finally:
        admin.close()
        server.stop()
