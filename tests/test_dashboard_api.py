"""The dashboard over HTTP (httpx's ASGI transport) against real Redis: every page,
every JSON endpoint and every action, read-only mode, the auth hook, and that job
arguments never leave the server unless ``show_args`` is set.

Tests that change Redis state run on a single node and on the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio
from starlette.exceptions import HTTPException
from starlette.requests import Request

from aioworker import JobCancelled, JobStatus, Worker
from aioworker.dashboard import AuthHook, create_dashboard
from aioworker.errors import MissingDependency
from aioworker.limits import Concurrent, Window
from tests.apps import dash

URLS = [
    pytest.param("redis_url", id="single"),
    pytest.param("redis_cluster_url", marks=pytest.mark.cluster, id="cluster"),
]

SECRET = "s3cr3t-token-7f4a"


@dataclass
class Dash:
    """The test's Redis, prefix, app worker (producer) and an HTTP client of a dashboard."""

    url: str
    prefix: str
    w: Worker
    stack: contextlib.AsyncExitStack
    client: httpx.AsyncClient = field(init=False)

    async def open(self, **options: Any) -> httpx.AsyncClient:
        """(Re)build the dashboard with these options; returns its client."""
        app = create_dashboard(self.w, **options)
        self.client = await self.stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        )
        return self.client

    async def get(self, path: str, status: int = 200) -> Any:
        r = await self.client.get(path)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()

    async def post(self, path: str, body: Any = None, status: int = 200) -> Any:
        r = await self.client.post(path, json={} if body is None else body)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()

    async def drain(self, queue: str) -> None:
        """Run a burst worker over one queue until it is drained."""
        await self.w.run(queues=[queue], burst=True, handle_signals=False)

    @contextlib.asynccontextmanager
    async def worker(self, *queues: str) -> AsyncIterator[Worker]:
        """A worker running in this process until the block ends."""
        w = dash.build(self.url, self.prefix)
        task = asyncio.create_task(w.run(queues=list(queues), handle_signals=False))
        try:
            yield w
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await w.close()


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    """Wait until ``check()`` is true (generous: these are behaviour, not timing, tests)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture(params=URLS)
async def env(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[Dash]:
    url: str = request.getfixturevalue(request.param)
    w = dash.build(url, prefix)
    async with contextlib.AsyncExitStack() as stack:
        d = Dash(url, prefix, w, stack)
        await d.open()
        try:
            yield d
        finally:
            await w.close()
            if "cluster" in request.param:
                await _drop_keys(url, prefix)


@pytest.fixture
async def single(redis_url: str, prefix: str) -> AsyncIterator[Dash]:
    w = dash.build(redis_url, prefix)
    async with contextlib.AsyncExitStack() as stack:
        d = Dash(redis_url, prefix, w, stack)
        await d.open()
        try:
            yield d
        finally:
            await w.close()


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


def _queue(data: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [q for q in data["queues"] if q["name"] == name]
    assert len(found) == 1, data
    return found[0]


# -- pages and static files -------------------------------------------------------------


async def test_pages_and_static_files(single: Dash) -> None:
    c = single.client
    for path, page in [("/", "queues"), ("/dead", "dead"), ("/job?id=x", "job")]:
        r = await c.get(path)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert f'data-page="{page}"' in r.text
        assert '<base href="/">' in r.text
        assert 'data-read-only="0"' in r.text and 'data-show-args="0"' in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
    for name in ("queues", "running", "scheduled", "dead", "workers", "schedules", "batches"):
        assert f'href="{name if name != "queues" else "./"}"' in (await c.get("/")).text
    js = await c.get("/static/dashboard.js")
    assert js.status_code == 200 and js.headers["content-type"].startswith("text/javascript")
    assert 'api("overview")' in js.text
    css = await c.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert (await c.get("/static/favicon.svg")).headers["content-type"] == "image/svg+xml"
    assert (await c.get("/static/nope.js")).status_code == 404
    assert (await c.get("/nope")).status_code == 404
    assert await single.get("/api/config") == {
        "read_only": False,
        "show_args": False,
        "refresh_s": 2.0,
    }


async def test_mounted_inside_a_fastapi_app(single: Dash) -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.mount("/ops/jobs", create_dashboard(single.w, read_only=True))
    await single.w.enqueue("add", 1, 2)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as c:
        page = await c.get("/ops/jobs/")
        assert page.status_code == 200
        assert '<base href="/ops/jobs/">' in page.text  # the script's relative URLs follow
        assert 'data-read-only="1"' in page.text
        assert (await c.get("/ops/jobs")).status_code in (307, 308)
        data = (await c.get("/ops/jobs/api/overview")).json()
        assert _queue(data, "default")["ready"] == 1
        assert (await c.get("/ops/jobs/static/dashboard.js")).status_code == 200
        r = await c.post("/ops/jobs/api/queues/default/pause", json={})
        assert r.status_code == 403


# -- reads ----------------------------------------------------------------------------


async def test_overview_counts_every_queue_and_keeps_a_history(env: Dash) -> None:
    await env.w.enqueue("fail", SECRET)
    await env.drain("default")  # one dead job
    for n in range(3):
        await env.w.enqueue("add", n, 1)
    for n in range(2):
        await env.w.tasks["add"].options(delay=3600, queue="other").enqueue(n, 2)

    data = await env.get("/api/overview")

    d, o = _queue(data, "default"), _queue(data, "other")
    assert (d["ready"], d["scheduled"], d["running"], d["dead"], d["paused"]) == (3, 0, 0, 1, False)
    assert (o["ready"], o["scheduled"], o["running"], o["dead"]) == (0, 2, 0, 0)
    assert data["totals"] == {
        "ready": 3,
        "scheduled": 2,
        "running": 0,
        "dead": 1,
        "workers": 0,
        "jobs_per_s": 0.0,
        "jobs_done": 0,
    }
    hist = data["history"]
    assert hist["ready"] == [3] and hist["scheduled"] == [2] and len(hist["t"]) == 1
    assert hist["queues"]["default"] == {"ready": [3], "running": [0]}
    assert await env.get("/api/queues") == {"queues": data["queues"], "skipped": []}


async def test_job_lists_by_state_queue_and_page(env: Dash) -> None:
    ready = [(await env.w.enqueue("add", n, 0)).id for n in range(4)]
    other = (await env.w.enqueue("add", 9, 9, queue="other")).id
    later = await env.w.tasks["add"].options(delay=3600).enqueue(1, 1)
    sooner = await env.w.tasks["add"].options(delay=600, queue="other").enqueue(2, 2)

    page = await env.get("/api/jobs?state=ready&queue=default&limit=2&offset=1")
    assert (page["state"], page["queue"], page["total"], page["offset"]) == (
        "ready",
        "default",
        4,
        1,
    )
    assert [j["id"] for j in page["jobs"]] == ready[1:3]  # next to run first
    assert page["jobs"][0]["task"] == "add"

    every = await env.get("/api/jobs?state=ready")
    assert every["total"] == 5
    assert sorted(j["id"] for j in every["jobs"]) == sorted([*ready, other])
    scheduled = await env.get("/api/jobs?state=scheduled")
    assert [j["id"] for j in scheduled["jobs"]] == [sooner.id, later.id]  # soonest first
    assert (await env.get("/api/jobs?state=running"))["jobs"] == []

    for bad in (
        "state=finished",
        "state=ready&limit=0",
        "state=ready&limit=501",
        "state=ready&offset=-1&queue=default",
        "state=ready&offset=5",  # an offset needs a queue
        "state=ready&limit=ten",
        "state=ready&queue=bad%20name",
    ):
        assert "error" in await env.get(f"/api/jobs?{bad}", status=400)


async def test_job_detail_and_find(single: Dash) -> None:
    job = await single.w.tasks["fail"].options(job_id="imports/2026:07").enqueue(SECRET)
    await single.drain("default")

    detail = await single.get(f"/api/jobs/default/{job.id}")
    assert (detail["id"], detail["status"], detail["task"], detail["attempts"]) == (
        job.id,
        "dead",
        "fail",
        1,
    )
    assert detail["error"]["type"] == "ValueError"
    assert detail["error"]["message"] == "the job failed"
    assert 'raise ValueError("the job failed")' in detail["error"]["traceback"]
    assert detail["enqueued_at"] and detail["finished_at"]
    assert await single.get(f"/api/find/{job.id}") == detail  # looked up in every queue
    assert "error" in await single.get("/api/find/no-such-job", status=404)
    assert "error" in await single.get("/api/jobs/other/no-such-job", status=404)
    assert "error" in await single.get("/api/jobs/bad%20queue/x", status=400)


async def test_workers_running_jobs_and_cancel(env: Dash) -> None:
    job = await env.w.enqueue("block", SECRET)
    async with env.worker("default"):

        async def running() -> bool:
            return bool((await env.get("/api/jobs?state=running"))["jobs"])

        await eventually(running)
        page = await env.get("/api/jobs?state=running&queue=default")
        assert page["total"] == 1
        (row,) = page["jobs"]
        assert (row["id"], row["task"], row["attempts"], row["state"]) == (
            job.id,
            "block",
            1,
            "running",
        )
        (worker,) = (await env.get("/api/workers"))["workers"]
        assert row["worker"] == worker["id"]
        assert worker["pid"] == os.getpid()
        assert worker["queues"] == {"default": 20}
        assert worker["state"] == "running"
        detail = await env.get(f"/api/jobs/default/{job.id}")
        assert detail["status"] == "running" and detail["worker"] == worker["id"]

        result = await env.post(f"/api/jobs/default/{job.id}/cancel")
        assert result == {
            "id": job.id,
            "queue": "default",
            "outcome": "requested",
            "where": "running",
        }
        with pytest.raises(JobCancelled):
            await job.result(timeout=15)
    assert await job.status() is JobStatus.CANCELLED
    # cancelling a queued job removes it at once
    queued = await env.w.enqueue("add", 1, 1, queue="other")
    result = await env.post(f"/api/jobs/other/{queued.id}/cancel")
    assert (result["outcome"], result["where"]) == ("cancelled", "queued")
    assert _queue(await env.get("/api/overview"), "other")["ready"] == 0


async def test_retry_a_dead_job_and_see_it_run(env: Dash, tmp_path: Path) -> None:
    marker = str(tmp_path / "marker")
    job = await env.w.enqueue("fail_once", marker)
    await env.drain("default")
    assert await job.status() is JobStatus.DEAD
    assert [j["id"] for j in (await env.get("/api/jobs?state=dead"))["jobs"]] == [job.id]

    assert await env.post("/api/dead/default/retry", {"ids": [job.id]}) == {
        "queue": "default",
        "retried": 1,
    }
    assert await job.status() is JobStatus.QUEUED
    assert _queue(await env.get("/api/overview"), "default")["dead"] == 0
    await env.drain("default")
    assert await job.result(timeout=5) == "ok"
    # retrying it again finds nothing dead
    assert (await env.post("/api/dead/default/retry", {"ids": [job.id]}))["retried"] == 0


async def test_retry_and_delete_dead_jobs_by_id_task_or_all(env: Dash) -> None:
    fails = [(await env.w.enqueue("fail", f"{SECRET}-{n}")).id for n in range(4)]
    once = (await env.w.enqueue("fail_once", "/nonexistent-dir/marker")).id  # dies: no dir
    await env.drain("default")
    assert _queue(await env.get("/api/overview"), "default")["dead"] == 5

    assert (await env.post("/api/dead/default/delete", {"ids": fails[:1]}))["deleted"] == 1
    assert "error" in await env.get(f"/api/jobs/default/{fails[0]}", status=404)
    assert (await env.post("/api/dead/default/retry", {"task": "fail_once"}))["retried"] == 1
    detail = await env.get(f"/api/jobs/default/{once}")
    assert (detail["status"], detail["attempts"]) == ("queued", 0)  # fresh attempts
    assert await env.post("/api/dead/default/delete", {"all": True}) == {
        "queue": "default",
        "deleted": 3,
    }
    assert _queue(await env.get("/api/overview"), "default")["dead"] == 0


async def test_bad_action_bodies_are_refused_and_change_nothing(single: Dash) -> None:
    job = await single.w.enqueue("fail", SECRET)
    await single.drain("default")
    for body in (
        {},
        {"ids": job.id},
        {"ids": [job.id], "all": True},
        {"all": "yes"},
        {"task": ""},
        [job.id],
    ):
        assert "error" in await single.post("/api/dead/default/retry", body, status=400)
        assert "error" in await single.post("/api/dead/default/delete", body, status=400)
    # a form post (what a cross-site page can send without asking) is not accepted
    r = await single.client.post("/api/dead/default/delete", data={"all": "true"})
    assert r.status_code == 415
    r = await single.client.post(
        "/api/queues/default/pause", content=b"{}", headers={"content-type": "text/plain"}
    )
    assert r.status_code == 415
    assert (await single.client.get("/api/queues/default/pause")).status_code == 405
    data = await single.get("/api/overview")
    assert (_queue(data, "default")["dead"], _queue(data, "default")["paused"]) == (1, False)
    assert await job.status() is JobStatus.DEAD


async def test_pause_and_resume_a_queue(env: Dash) -> None:
    assert await env.post("/api/queues/default/pause") == {
        "queue": "default",
        "paused": True,
        "changed": True,
    }
    assert (await env.post("/api/queues/default/pause"))["changed"] is False
    q = _queue(await env.get("/api/overview"), "default")
    assert q["paused"] is True and q["paused_at"]
    job = await env.w.enqueue("add", 2, 3)
    async with env.worker("default"):
        await asyncio.sleep(0.5)
        assert await job.status() is JobStatus.QUEUED  # paused: not leased
        assert (await env.post("/api/queues/default/resume"))["changed"] is True
        assert await job.result(timeout=10) == 5
    assert _queue(await env.get("/api/queues"), "default")["paused"] is False


async def test_schedules_list_pause_resume_and_run_now(env: Dash) -> None:
    (s,) = (await env.get("/api/schedules"))["schedules"]
    assert (s["name"], s["task"], s["queue"], s["schedule"], s["paused"]) == (
        "hourly-report",
        "hourly-report",
        "other",
        "every 3600 s",
        False,
    )
    assert s["next_run"] is not None
    paused = await env.post("/api/schedules/hourly-report/pause")
    assert paused["paused"] is True and paused["next_run"] is None
    assert (await env.get("/api/schedules"))["schedules"][0]["paused"] is True
    assert (await env.post("/api/schedules/hourly-report/resume"))["paused"] is False
    run = await env.post("/api/schedules/hourly-report/run")
    assert run["job_id"].startswith("cron:hourly-report:")
    page = await env.get("/api/jobs?state=ready&queue=other")
    assert [j["id"] for j in page["jobs"]] == [run["job_id"]]
    assert "error" in await env.post("/api/schedules/nope/pause", status=404)


async def test_an_app_without_schedules_shows_none(redis_url: str, prefix: str) -> None:
    w = Worker(redis_url, prefix=prefix)
    app = create_dashboard(w)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as c:
            for path, key in [
                ("/api/schedules", "schedules"),
                ("/api/limiters", "limiters"),
                ("/api/batches", "batches"),
                ("/api/workers", "workers"),
            ]:
                r = await c.get(path)
                assert r.status_code == 200 and r.json() == {key: []}
    finally:
        await w.close()


async def test_batches_progress_and_cancel(env: Dash) -> None:
    batch = env.w.batch(description="March invoices")
    async with batch:
        await batch.add([env.w.tasks["add"].call(n, n) for n in range(3)])
    (b,) = (await env.get("/api/batches"))["batches"]
    assert (b["id"], b["description"], b["total"], b["pending"], b["state"]) == (
        batch.id,
        "March invoices",
        3,
        3,
        "sealed",
    )
    assert await env.post(f"/api/batches/{batch.id}/cancel") == {
        "id": batch.id,
        "cancelled": True,
    }
    (b,) = (await env.get("/api/batches"))["batches"]
    assert (b["state"], b["cancelled"]) == ("cancelled", True)
    assert (await env.post(f"/api/batches/{batch.id}/cancel"))["cancelled"] is False
    assert "error" in await env.post("/api/batches/no-such-batch/cancel", status=404)
    assert "error" in await env.get("/api/batches?limit=0", status=400)


async def test_limiters_with_their_state(env: Dash) -> None:
    window = Window("dash-api", 100, per=60, on=env.w)
    for _ in range(3):
        assert await window.try_acquire()
    cap = Concurrent("task:capped", 2, on=env.w)
    hold = await cap.try_acquire()
    assert hold

    data = await env.get("/api/limiters")

    by_name = {x["name"]: x for x in data["limiters"]}
    assert set(by_name) == {"dash-api", "task:capped"}
    assert by_name["dash-api"] == {
        "name": "dash-api",
        "kind": "Window",
        "limit": 100,
        "per_s": 60.0,
        "keyed": False,
        "tasks": ["limited"],
        "in_use": 3,
        "waiting": 0,
    }
    capped = by_name["task:capped"]
    assert (capped["kind"], capped["limit"], capped["per_s"], capped["in_use"]) == (
        "Concurrent",
        2,
        None,
        1,
    )
    assert capped["tasks"] == ["capped"]
    await cap.release(hold)
    assert {x["name"]: x for x in (await env.get("/api/limiters"))["limiters"]}["task:capped"][
        "in_use"
    ] == 0


# -- arguments, read-only, auth ---------------------------------------------------------


async def _every_get(d: Dash, ids: dict[str, str]) -> list[str]:
    """The bodies of every GET endpoint and page about the test's jobs."""
    paths = [
        "/",
        "/dead",
        "/api/overview",
        "/api/queues",
        "/api/workers",
        "/api/schedules",
        "/api/batches",
        "/api/limiters",
    ]
    for state in ("ready", "scheduled", "running", "dead"):
        paths.append(f"/api/jobs?state={state}")
        for q in ("default", "other"):
            paths.append(f"/api/jobs?state={state}&queue={q}")
    for queue_and_id in ids.values():
        queue, _, job_id = queue_and_id.partition("|")
        paths += [f"/api/jobs/{queue}/{job_id}", f"/api/find/{job_id}"]
    bodies = []
    for path in paths:
        r = await d.client.get(path)
        assert r.status_code == 200, (path, r.text)
        bodies.append(r.text)
    return bodies


async def test_arguments_results_and_checkpoints_never_leak_unless_shown(env: Dash) -> None:
    w = env.w
    ids = {
        "ready": "other|" + (await w.enqueue("add", SECRET, SECRET, queue="other")).id,
        "scheduled": "other|"
        + (await w.tasks["echo"].options(delay=3600, queue="other").enqueue(secret=SECRET)).id,
    }
    dead = await w.enqueue("fail", SECRET)
    done = await w.enqueue("echo", SECRET)
    await env.drain("default")
    assert await done.result(timeout=5) == {"echo": SECRET}
    ids["dead"], ids["complete"] = f"default|{dead.id}", f"default|{done.id}"
    batch = w.batch(description="a batch")
    async with batch:
        await batch.add([w.tasks["add"].options(queue="other").call(SECRET, 1)])
    running = await w.enqueue("block", SECRET)
    ids["running"] = f"default|{running.id}"
    async with env.worker("default"):

        async def checkpointed() -> bool:
            d = await env.get(f"/api/jobs/default/{running.id}")
            return bool(d["status"] == "running" and d["steps"])

        await eventually(checkpointed)

        hidden = await _every_get(env, ids)
        for body in hidden:
            assert SECRET not in body
        detail = await env.get(f"/api/jobs/default/{running.id}")
        assert detail["hidden"] is True
        assert (detail["args"], detail["kwargs"], detail["checkpoint"]) == (None, None, None)
        assert detail["steps"] == ["remember"]  # names only
        page = await env.get("/api/jobs?state=ready&queue=other")
        assert {(j["args"], j["kwargs"], j["hidden"]) for j in page["jobs"]} == {(None, None, True)}

        await env.open(show_args=True)
        shown = await _every_get(env, ids)
        assert sum(SECRET in body for body in shown) >= len(ids)
        detail = await env.get(f"/api/jobs/default/{running.id}")
        assert detail["args"] == [SECRET]
        assert detail["checkpoint"] == {"secret": SECRET}
        assert detail["steps"] == {"remember": SECRET}
        assert (await env.get(f"/api/jobs/default/{done.id}"))["result"] == {"echo": SECRET}
        page = await env.get("/api/jobs?state=ready&queue=other")
        assert [j["args"] for j in page["jobs"]] == [[SECRET, SECRET], [SECRET, 1]]


async def test_read_only_refuses_every_action(single: Dash) -> None:
    w = single.w
    dead = await w.enqueue("fail", SECRET)
    await single.drain("default")
    queued = await w.enqueue("add", 1, 2)
    batch = w.batch()
    async with batch:
        await batch.add([w.tasks["add"].call(1, 1)])
    await single.open(read_only=True)
    actions = [
        ("/api/queues/default/pause", {}),
        ("/api/queues/default/resume", {}),
        ("/api/dead/default/retry", {"all": True}),
        ("/api/dead/default/delete", {"all": True}),
        (f"/api/jobs/default/{queued.id}/cancel", {}),
        ("/api/schedules/hourly-report/pause", {}),
        ("/api/schedules/hourly-report/resume", {}),
        ("/api/schedules/hourly-report/run", {}),
        (f"/api/batches/{batch.id}/cancel", {}),
    ]
    for path, body in actions:
        assert await single.post(path, body, status=403) == {"error": "the dashboard is read-only"}
    assert await dead.status() is JobStatus.DEAD
    assert await queued.status() is JobStatus.QUEUED
    data = await single.get("/api/overview")
    assert _queue(data, "default")["paused"] is False
    assert _queue(data, "other")["ready"] == 0  # no schedule run
    assert (await single.get("/api/schedules"))["schedules"][0]["paused"] is False
    assert (await single.get("/api/batches"))["batches"][0]["cancelled"] is False
    assert 'data-read-only="1"' in (await single.client.get("/")).text
    assert (await single.get("/api/config"))["read_only"] is True


async def test_auth_hook_guards_every_request(single: Dash) -> None:
    seen: list[str] = []

    def sync_hook(request: Request) -> bool:
        seen.append(request.url.path)
        return request.headers.get("x-token") == "letmein"

    async def async_hook(request: Request) -> bool:
        await asyncio.sleep(0)
        return request.headers.get("x-token") == "letmein"

    def asks_for_a_password(request: Request) -> bool:
        if request.headers.get("authorization") != "Basic b3BzOnB3":
            raise HTTPException(401, headers={"WWW-Authenticate": 'Basic realm="jobs"'})
        return True

    paths = ["/", "/static/dashboard.js", "/api/overview", "/api/jobs?state=dead"]
    hooks: list[AuthHook] = [sync_hook, async_hook]
    for hook in hooks:
        c = await single.open(auth=hook)
        for path in paths:
            assert (await c.get(path)).status_code == 403
            assert (await c.get(path, headers={"x-token": "letmein"})).status_code == 200
        r = await c.post("/api/queues/default/pause", json={})
        assert r.status_code == 403
        assert not (await single.get("/api/queues", status=403)).get("queues")
    assert seen[:2] == ["/", "/"]
    assert (
        _queue(await _get_as(single, "/api/overview", {"x-token": "letmein"}), "default")["paused"]
        is False
    )

    c = await single.open(auth=asks_for_a_password)
    r = await c.get("/api/overview")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Basic realm="jobs"'
    r = await c.get("/api/overview", headers={"authorization": "Basic b3BzOnB3"})
    assert r.status_code == 200


async def test_the_example_app_asks_for_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from examples.dashboard import app as example

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=example.app), base_url="http://test"
    ) as c:
        monkeypatch.delenv("DASHBOARD_PASSWORD", raising=False)
        assert (await c.get("/jobs/api/config")).status_code == 403  # no password set
        monkeypatch.setenv("DASHBOARD_PASSWORD", "s3cret")
        for auth in (None, ("ops", "wrong")):
            r = await c.get("/jobs/api/config", auth=auth)
            assert r.status_code == 401
            assert r.headers["www-authenticate"] == 'Basic realm="jobs"'
        r = await c.get("/jobs/api/config", auth=("ops", "s3cret"))
        assert r.status_code == 200 and r.json()["read_only"] is False
        r = await c.get("/jobs/", auth=("ops", "s3cret"))
        assert '<base href="/jobs/">' in r.text


async def _get_as(d: Dash, path: str, headers: dict[str, str]) -> Any:
    r = await d.client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


# -- failures ---------------------------------------------------------------------------


async def test_redis_unavailable_answers_503_and_pages_still_load() -> None:
    w = dash.build("redis://127.0.0.1:1/0", "t-down")
    app = create_dashboard(w)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as c:
            r = await c.get("/api/overview")
            assert r.status_code == 503
            assert "127.0.0.1:1" in r.json()["error"]
            r = await c.post("/api/queues/default/pause", json={})
            assert r.status_code == 503
            assert (await c.get("/")).status_code == 200
    finally:
        await w.close()


def test_missing_starlette_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "starlette", None)
    with pytest.raises(MissingDependency, match=r"pip install 'aioworker\[dashboard\]'"):
        create_dashboard(dash.build("redis://127.0.0.1:1/0", "t-missing"))
