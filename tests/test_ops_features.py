"""``aioworker info`` shows the optional features an app uses: limiters with their holds,
schedules with their next run, batches in progress (each part runs when the feature's
module is installed)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest

from aioworker import Concurrent, Worker
from aioworker.cli import main
from aioworker.inspect import Inspector
from tests.apps import ops

APP = "tests.apps.ops:worker"


def featured(url: str, prefix: str) -> Worker:
    """The ops app plus a limited task, a schedule and (when available) batches."""
    w = ops.build(url, prefix)
    w.task(name="limited", rate_limit=Concurrent(f"{prefix}-cap", 2))(ops.add)
    cron: Any = getattr(w, "cron", None)
    if cron is not None:
        cron(every=3600, name="hourly", args=(1, 2))(w.tasks["add"])
    return w


@pytest.fixture
async def app(redis_url: str, prefix: str) -> AsyncIterator[Worker]:
    w = featured(redis_url, prefix)
    try:
        yield w
    finally:
        await w.close()


async def info(url: str, prefix: str, *extra: str) -> tuple[int, str]:
    ops.worker = featured(url, prefix)
    buf = io.StringIO()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with contextlib.redirect_stdout(buf):
            code = await asyncio.to_thread(main, ["info", APP, "--log-level", "WARNING", *extra])
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return code, buf.getvalue()


async def test_info_lists_the_features_the_app_uses(
    app: Worker, redis_url: str, prefix: str
) -> None:
    pytest.importorskip("aioworker.limit_info")
    batch: Any = None
    if hasattr(app, "batch"):
        batch = app.batch(description="nightly import")
        await batch.add([app.tasks["add"].call(1, 1), app.tasks["add"].call(2, 2)])

    extras = await Inspector(app).extras()

    (lim,) = extras["limiters"]
    assert (lim["name"], lim["kind"], lim["limit"], lim["tasks"]) == (
        f"{prefix}-cap",
        "Concurrent",
        2,
        ["limited"],
    )
    assert lim["in_use"] == 0
    if hasattr(app, "cron"):
        (sched,) = extras["schedules"]
        assert (sched["name"], sched["task"], sched["next_run"] is not None) == (
            "hourly",
            "add",
            True,
        )
    if batch is not None:
        (b,) = extras["batches"]
        assert (b["description"], b["total"], b["pending"]) == ("nightly import", 2, 2)

    code, out = await info(redis_url, prefix, "--json")
    assert code == 0
    assert orjson.loads(out)["limiters"][0]["name"] == f"{prefix}-cap"
    code, text = await info(redis_url, prefix)
    assert code == 0
    assert "LIMITERS (1)" in text and f"{prefix}-cap" in text
    if hasattr(app, "cron"):
        assert "SCHEDULES (1)" in text and "hourly" in text
    if batch is not None:
        assert "BATCHES (1)" in text and "nightly import" in text


async def test_info_leaves_out_features_the_app_does_not_use(redis_url: str, prefix: str) -> None:
    w = ops.build(redis_url, prefix)
    try:
        assert await Inspector(w).extras() == {}
    finally:
        await w.close()
