"""The operator commands, run in-process with ``main([...])`` against real Redis.

Each command runs in a thread (it starts its own event loop, as the real CLI does) while
the test prepares and checks Redis state with the app's own worker on the test's loop.
Most tests run on a single node and on the cluster.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
import redis.asyncio

from aioworker import JobCancelled, JobStatus, Worker
from aioworker.cli import main
from aioworker.keys import QueueKeys, RegistryKeys
from tests.apps import ops

APP = "tests.apps.ops:worker"

URLS = [
    pytest.param("redis_url", id="single"),
    pytest.param("redis_cluster_url", marks=pytest.mark.cluster, id="cluster"),
]


@dataclass
class Ops:
    """The test's Redis, prefix, app worker (producer) and a way to run commands."""

    url: str
    prefix: str
    w: Worker
    capsys: pytest.CaptureFixture[str]

    async def cli(self, *argv: str) -> tuple[int, str, str]:
        """Run ``aioworker <argv>`` in-process; returns (status, stdout, stderr)."""
        self.capsys.readouterr()
        ops.worker = ops.build(self.url, self.prefix)
        root = logging.getLogger()
        handlers, level = root.handlers[:], root.level
        try:
            code = await asyncio.to_thread(main, list(argv))
        finally:  # the command set up logging on the captured stderr: put it back
            root.handlers[:] = handlers
            root.setLevel(level)
        captured = self.capsys.readouterr()
        return code, captured.out, captured.err

    async def cli_json(self, *argv: str) -> Any:
        code, out, err = await self.cli(*argv, "--json")
        assert code == 0, (out, err)
        return orjson.loads(out)

    def keys(self, queue: str = "default") -> QueueKeys:
        return QueueKeys(self.prefix, queue)

    async def drain(self, queue: str) -> None:
        """Run a burst worker over one queue until it is drained."""
        await self.w.run(queues=[queue], burst=True, handle_signals=False)


@pytest.fixture(params=URLS)
async def env(
    request: pytest.FixtureRequest, prefix: str, capsys: pytest.CaptureFixture[str]
) -> AsyncIterator[Ops]:
    url: str = request.getfixturevalue(request.param)
    w = ops.build(url, prefix)
    try:
        yield Ops(url, prefix, w, capsys)
    finally:
        await w.close()
        if "cluster" in request.param:
            await _drop_keys(url, prefix)


async def _drop_keys(url: str, prefix: str) -> None:
    """Remove a cluster test's keys (the shared cluster outlives the test)."""
    rc = redis.asyncio.RedisCluster.from_url(url)
    try:
        await rc.initialize()
        nodes = [(n.host, int(n.port)) for n in rc.get_primaries()]
    finally:
        await rc.aclose()
    for host, port in nodes:
        async with redis.asyncio.Redis(host=host, port=port) as node:
            async for key in node.scan_iter(match=f"{prefix}:*", count=1000):
                await node.delete(key)


def _queue(info: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [q for q in info["queues"] if q["name"] == name]
    assert len(found) == 1, found
    return found[0]


async def test_info_counts_each_queue_and_shows_pauses(env: Ops) -> None:
    for n in range(3):
        await env.w.enqueue("add", n, 1)
    add = env.w.tasks["add"]
    for n in range(2):
        await add.options(delay=3600).enqueue(n, 2)
    await env.w.enqueue("fail", "boom", queue="other")
    await env.drain("other")
    assert (await env.cli("pause", APP, "default"))[0] == 0

    info = await env.cli_json("info", APP)

    default = _queue(info, "default")
    assert (default["ready"], default["scheduled"], default["running"], default["dead"]) == (
        3,
        2,
        0,
        0,
    )
    assert default["paused"] is True
    other = _queue(info, "other")
    assert (other["ready"], other["scheduled"], other["dead"], other["paused"]) == (
        0,
        0,
        1,
        False,
    )
    assert info["workers"] == []  # the burst worker removed its record when it left
    code, text, _ = await env.cli("info", APP)
    assert code == 0
    lines = text.splitlines()
    assert lines[0].split() == ["QUEUE", "READY", "SCHEDULED", "RUNNING", "DEAD", "PAUSED"]
    assert lines[1].split()[:6] == ["default", "3", "2", "0", "0", "since"]
    assert lines[2].split() == ["other", "0", "0", "0", "1", "no"]
    assert "WORKERS (0 alive)" in text


async def test_queues_are_found_through_the_registry_without_configuration(env: Ops) -> None:
    # a queue the app does not configure is listed once a producer enqueued to it
    await env.w.enqueue("add", 1, 2, queue="adhoc-q")
    info = await env.cli_json("info", APP)
    assert [q["name"] for q in info["queues"]] == ["adhoc-q", "default", "other"]
    assert _queue(info, "adhoc-q")["ready"] == 1


async def test_jobs_lists_pages_of_each_state(env: Ops) -> None:
    ids = [(await env.w.enqueue("add", n, 0)).id for n in range(5)]
    sched = await env.w.tasks["add"].options(delay=3600).enqueue(9, 9)
    dead_ids = [(await env.w.enqueue("fail", f"r{n}", queue="other")).id for n in range(2)]
    await env.drain("other")

    pages = await env.cli_json("jobs", APP, "--queue", "default", "--state", "ready")
    assert [(p["queue"], p["state"], p["total"]) for p in pages] == [("default", "ready", 5)]
    assert [j["id"] for j in pages[0]["jobs"]] == ids  # next to run first
    assert pages[0]["jobs"][0]["task"] == "add"
    assert pages[0]["jobs"][0]["args"] == [0, 0]

    page = await env.cli_json(
        "jobs", APP, "--queue", "default", "--state", "ready", "--limit", "2", "--offset", "1"
    )
    assert [j["id"] for j in page[0]["jobs"]] == ids[1:3]

    pages = await env.cli_json("jobs", APP, "--queue", "default", "--state", "scheduled")
    assert [j["id"] for j in pages[0]["jobs"]] == [sched.id]

    pages = await env.cli_json("jobs", APP, "--queue", "other", "--state", "dead")
    dead = pages[0]["jobs"]
    assert sorted(j["id"] for j in dead) == sorted(dead_ids)
    assert {j["error_type"] for j in dead} == {"ValueError"}
    assert {j["error_message"] for j in dead} == {"r0", "r1"}

    code, text, _ = await env.cli("jobs", APP, "--queue", "other")
    assert code == 0
    assert "other / dead: 2 job(s), showing 1-2" in text
    assert "ValueError: r0" in text and "ValueError: r1" in text


async def test_jobs_show_prints_arguments_attempts_and_the_traceback(env: Ops) -> None:
    job = await env.w.enqueue("fail", "kaput", queue="other")
    await env.drain("other")

    code, text, _ = await env.cli("jobs", "show", APP, job.id)
    assert code == 0
    assert f"id        {job.id}" in text
    assert "queue     other" in text
    assert "status    dead" in text
    assert 'args      ["kaput"]' in text
    assert "attempts  1" in text
    assert "error: ValueError: kaput" in text
    assert "raise ValueError(reason)" in text  # the traceback

    detail = await env.cli_json("jobs", "show", APP, job.id, "--queue", "other")
    assert (detail["status"], detail["task"], detail["attempts"]) == ("dead", "fail", 1)
    assert detail["error"]["type"] == "ValueError"

    code, text, _ = await env.cli("jobs", "show", APP, "no-such-job")
    assert code == 1
    assert "job no-such-job not found" in text


async def test_enqueue_runs_a_task_with_json_arguments(env: Ops) -> None:
    out = await env.cli_json("enqueue", APP, "add", "[2, 3]")
    assert out["queue"] == "default" and out["created"] is True
    out_kw = await env.cli_json("enqueue", APP, "add", "[]", "--kwargs", '{"a": 4, "b": 5}')
    await env.drain("default")
    assert await env.w.job(out["id"]).result(timeout=5) == 5
    assert await env.w.job(out_kw["id"]).result(timeout=5) == 9

    delayed = await env.cli_json("enqueue", APP, "add", "[1, 1]", "--delay", "3600")
    other = await env.cli_json("enqueue", APP, "add", "[7, 7]", "--queue", "other")
    assert await env.w.job(delayed["id"]).status() is JobStatus.SCHEDULED
    assert await env.w.job(other["id"], "other").status() is JobStatus.QUEUED

    code, _, err = await env.cli("enqueue", APP, "add", "[1,")
    assert code == 2 and "arguments is not valid JSON" in err
    code, _, err = await env.cli("enqueue", APP, "add", '{"a": 1}')
    assert code == 2 and "arguments must be an array in JSON" in err
    code, _, err = await env.cli("enqueue", APP, "nope", "[]")
    assert code == 1 and "no task named 'nope'" in err
    code, _, err = await env.cli("enqueue", APP, "add", "[1, 2, 3]")
    assert code == 1 and "bad arguments for task 'add'" in err
    # a chosen id enqueued twice exists once
    first = await env.cli_json("enqueue", APP, "add", "[1, 1]", "--job-id", "fixed-1")
    again = await env.cli_json("enqueue", APP, "add", "[1, 1]", "--job-id", "fixed-1")
    assert (first["created"], again["created"]) == (True, False)


async def test_pause_stops_leasing_and_resume_restarts_it(env: Ops) -> None:
    assert (await env.cli("pause", APP, "default"))[1] == "queue default paused\n"
    assert (await env.cli("pause", APP, "default"))[1] == "queue default was paused already\n"
    stats = await env.cli_json("info", APP, "--queue", "default")
    assert stats["queues"][0]["paused"] is True

    run = asyncio.create_task(env.w.run(queues=["default"], handle_signals=False))
    try:
        job = await env.w.enqueue("add", 20, 22)
        await asyncio.sleep(1.5)  # a paused queue's jobs stay queued however long
        assert await job.status() is JobStatus.QUEUED
        assert (await env.cli("resume", APP, "default"))[1] == "queue default resumed\n"
        assert await job.result(timeout=10) == 42
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
    assert (await env.cli("resume", APP, "default"))[1] == "queue default was not paused\n"
    assert (await env.cli_json("info", APP, "--queue", "default"))["queues"][0]["paused"] is False


async def test_dead_retry_by_task_and_purge_by_id_and_all(env: Ops) -> None:
    fails = [(await env.w.enqueue("fail", f"f{n}", queue="other")).id for n in range(3)]
    others = [(await env.w.enqueue("other_fail", f"o{n}", queue="other")).id for n in range(2)]
    await env.drain("other")

    out = await env.cli_json(
        "dead", "retry", APP, "--queue", "other", "--task", "other_fail", "--yes"
    )
    assert out == {"queue": "other", "action": "retry", "jobs": 2}
    page = await env.cli_json("jobs", APP, "--queue", "other", "--state", "ready")
    assert sorted(j["id"] for j in page[0]["jobs"]) == sorted(others)
    assert all(j["attempts"] == 0 for j in page[0]["jobs"])

    code, text, _ = await env.cli("dead", "purge", APP, "--queue", "other", fails[0], "--yes")
    assert (code, text) == (0, "1 dead job(s) of queue other deleted\n")
    assert await env.w.job(fails[0], "other").status() is JobStatus.NOT_FOUND

    out = await env.cli_json("dead", "purge", APP, "--queue", "other", "--all", "--yes")
    assert out["jobs"] == 2
    stats = await env.cli_json("info", APP, "--queue", "other")
    assert stats["queues"][0]["dead"] == 0
    for job_id in fails:
        assert await env.w.job(job_id, "other").status() is JobStatus.NOT_FOUND

    code, _, err = await env.cli("dead", "retry", APP, "--queue", "other", "--yes")
    assert code == 2 and "exactly one of" in err


async def test_destructive_commands_refuse_without_yes_when_not_on_a_terminal(
    env: Ops, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = [(await env.w.enqueue("fail", f"f{n}", queue="other")).id for n in range(2)]
    await env.drain("other")
    queued = await env.w.enqueue("add", 1, 1)
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))

    for argv in (
        ("dead", "purge", APP, "--queue", "other", "--all"),
        ("dead", "retry", APP, "--queue", "other", dead[0]),
        ("cancel", APP, queued.id),
    ):
        code, out, err = await env.cli(*argv)
        assert code == 2, (argv, out, err)
        assert "Refusing without --yes (stdin is not a terminal)" in err
    # nothing changed
    assert (await env.cli_json("info", APP, "--queue", "other"))["queues"][0]["dead"] == 2
    assert await queued.status() is JobStatus.QUEUED

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Terminal("n\n"))
    code, _, err = await env.cli("dead", "purge", APP, "--queue", "other", "--all")
    assert code == 1 and "Delete for good all 2 dead job(s) of queue other? [y/N]" in err
    assert (await env.cli_json("info", APP, "--queue", "other"))["queues"][0]["dead"] == 2
    monkeypatch.setattr(sys, "stdin", Terminal("y\n"))
    code, out, _ = await env.cli("dead", "purge", APP, "--queue", "other", "--all")
    assert (code, out) == (0, "2 dead job(s) of queue other deleted\n")


async def test_cancel_removes_queued_and_scheduled_jobs_and_marks_them(env: Ops) -> None:
    keep = await env.w.enqueue("add", 1, 1)
    queued = await env.w.enqueue("add", 2, 2)
    scheduled = await env.w.tasks["add"].options(delay=3600).enqueue(3, 3)
    dead = await env.w.enqueue("fail", "x", queue="other")
    await env.drain("other")

    code, text, _ = await env.cli("cancel", APP, queued.id, scheduled.id, "--yes")
    assert code == 0
    assert f"job {queued.id} (queue default): cancelled (it was queued)" in text
    assert f"job {scheduled.id} (queue default): cancelled (it was scheduled)" in text
    for job in (queued, scheduled):
        info = await job.info()
        assert (info.status, info.task) == (JobStatus.CANCELLED, "add")
        with pytest.raises(JobCancelled):
            await job.result(timeout=1)
    page = await env.cli_json("jobs", APP, "--queue", "default")
    assert [(p["state"], [j["id"] for j in p["jobs"]]) for p in page] == [
        ("ready", [keep.id]),
        ("scheduled", []),
        ("running", []),
        ("dead", []),
    ]
    await env.drain("default")
    assert await keep.result(timeout=5) == 2

    code, text, _ = await env.cli("cancel", APP, dead.id, keep.id, "missing-id", "--yes", "--json")
    assert code == 1  # one was not found
    out = orjson.loads(text)
    assert [(r["id"], r["outcome"]) for r in out] == [
        (dead.id, "dead"),
        (keep.id, "finished"),
        ("missing-id", "missing"),
    ]
    code, _, _ = await env.cli("cancel", APP, "missing-id", "--yes")
    assert code == 1
    assert await dead.status() is JobStatus.DEAD


async def test_registry_keys_are_tagged_apart_from_the_queues(prefix: str) -> None:
    rk = RegistryKeys(prefix)
    assert (rk.queues, rk.workers, rk.worker_info) == (
        f"{prefix}:{{queues}}",
        f"{prefix}:{{workers}}:ids",
        f"{prefix}:{{workers}}:info",
    )
    assert QueueKeys(prefix, "q").cancel == f"{prefix}:{{q}}:cancel"


async def test_jobs_of_fair_share_groups_count_and_list_as_ready(env: Ops) -> None:
    grouped = env.w.task(name="grouped", group=lambda tenant, n: tenant)(ops.add_for)
    plain = [(await env.w.enqueue("add", n, 0)).id for n in range(2)]
    fair = [(await grouped.enqueue(t, n)).id for t, n in (("a", 1), ("b", 1), ("a", 2))]

    stats = await env.cli_json("info", APP, "--queue", "default")
    assert stats["queues"][0]["ready"] == 5
    page = await env.cli_json("jobs", APP, "--queue", "default", "--state", "ready")
    ids = [j["id"] for j in page[0]["jobs"]]
    assert page[0]["total"] == 5
    assert ids[:2] == plain and sorted(ids[2:]) == sorted(fair)
    page = await env.cli_json(
        "jobs", APP, "--queue", "default", "--state", "ready", "--offset", "1", "--limit", "2"
    )
    assert [j["id"] for j in page[0]["jobs"]] == ids[1:3]
    page = await env.cli_json(
        "jobs", APP, "--queue", "default", "--state", "ready", "--offset", "3", "--limit", "5"
    )
    assert [j["id"] for j in page[0]["jobs"]] == ids[3:]
