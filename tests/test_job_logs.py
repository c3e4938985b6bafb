"""Structured job log lines: retry and dead-letter lines carry the job's fields and the
error class that alerting routes on; the job's own lines carry the job's fields."""

from __future__ import annotations

import logging

import pytest

from aioworker import Backoff, JobContext, JobDead, Worker
from aioworker.logfields import JobFieldsFilter

FIELDS = ("job_id", "task", "queue", "attempt", "event", "error_class")


async def test_failure_lines_carry_the_job_fields_and_the_error_class(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    w = Worker(redis_url, prefix=prefix, backoff=Backoff(base_s=0.01, jitter=False))
    mine = logging.getLogger("tests.job_logs")
    inside: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            inside.append(record)

    keep = Keep()
    keep.addFilter(JobFieldsFilter())  # what setup_logging installs on its handler
    mine.addHandler(keep)

    @w.task(name="flaky", retries=1)
    async def flaky(ctx: JobContext) -> None:
        mine.warning("trying")
        raise KeyError("nope")

    try:
        job = await flaky.enqueue()
        with caplog.at_level(logging.WARNING, logger="aioworker"):
            await w.run(burst=True, handle_signals=False)
        with pytest.raises(JobDead):
            await job.result(timeout=1)
    finally:
        mine.removeHandler(keep)
        await w.close()
    lines = [r for r in caplog.records if r.name == "aioworker.job"]
    got = [tuple(getattr(r, f, None) for f in FIELDS) for r in lines]
    assert got == [
        (job.id, "flaky", "default", 1, "retry", "KeyError"),
        (job.id, "flaky", "default", 2, "dead", "KeyError"),
    ]
    assert [(r.job_id, r.task, r.queue, r.attempt) for r in inside] == [  # type: ignore[attr-defined]
        (job.id, "flaky", "default", 1),
        (job.id, "flaky", "default", 2),
    ]
