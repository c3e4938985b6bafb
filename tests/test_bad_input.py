"""Jobs that cannot run are dead-lettered at once, and the worker goes on with the next."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
import redis.asyncio

from aioworker import (
    ConfigError,
    Debounce,
    EnqueueError,
    JobContext,
    JobDead,
    JobSpec,
    JobStatus,
    Throttle,
    Unique,
)
from aioworker.bounds import MAX_RETRIES, MAX_SECONDS
from aioworker.cli import main as cli_main
from aioworker.keys import QueueKeys, RegistryKeys
from aioworker.worker import DEFAULT_MAX_RESULT_BYTES
from tests.apps import ops
from tests.worker_kit import MakeWorker, burst, running, wait_for_status


async def write_raw_job(redis_url: str, prefix: str, job_id: str, record: bytes) -> None:
    """Put a job record straight into Redis, the way a foreign or broken producer might."""
    k = QueueKeys(prefix, "default")
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        await r.hset(k.jobs, job_id, record)
        await r.rpush(k.ready, job_id)
        await r.rpush(k.wake, 1)


async def test_unknown_task_is_dead_and_the_worker_runs_the_next_job(
    make_worker: MakeWorker,
) -> None:
    producer = make_worker()
    consumer = make_worker()
    ran: list[str] = []

    @producer.task(name="billing.refund", retries=5)
    async def refund(ctx: JobContext, order: str) -> None:
        raise AssertionError("the producer never runs jobs")

    @producer.task(name="billing.charge")
    async def charge_p(ctx: JobContext, order: str) -> str:
        raise AssertionError("the producer never runs jobs")

    @consumer.task(name="billing.charge")
    async def charge_c(ctx: JobContext, order: str) -> str:
        ran.append(order)
        return f"charged {order}"

    async with running(consumer) as run:
        ghost = await refund.enqueue("o-1")
        await wait_for_status(consumer, ghost.id, JobStatus.DEAD)
        good = await charge_p.enqueue("o-2")
        assert await good.result(timeout=5) == "charged o-2"
        assert not run.done()

    assert ran == ["o-2"]
    info = await ghost.info()
    assert info.status is JobStatus.DEAD
    assert info.attempts == 1  # no retries for a task this worker cannot run
    assert info.error is not None
    assert info.error["type"] == "UnknownTask"
    assert "billing.refund" in info.error["message"]
    assert "billing.charge" in info.error["message"]  # what this worker does have
    with pytest.raises(JobDead):
        await ghost.result(timeout=5)

    # the dead job is kept: a worker that knows the task can run it after retry_dead
    consumer2 = make_worker()
    refunded: list[str] = []

    @consumer2.task(name="billing.refund")
    async def refund_c(ctx: JobContext, order: str) -> None:
        refunded.append(order)

    assert await consumer2.client.retry_dead("default") == 1
    await burst(consumer2)
    assert refunded == ["o-1"]


@pytest.mark.parametrize(
    ("record", "why"),
    [
        (b"no stamp here", "no time stamp"),
        (b"abc|{}", "bad time stamp"),
        (b"1700000000000|{not json", "not valid JSON"),
        (b"1700000000000|[1, 2]", "no task name"),
        (b'1700000000000|{"t": "x", "a": {"n": 1}, "k": {}}', "not a list"),
    ],
)
async def test_undecodable_payload_is_dead_with_decode_error(
    make_worker: MakeWorker, redis_url: str, prefix: str, record: bytes, why: str
) -> None:
    w = make_worker()
    ran: list[int] = []

    @w.task()
    async def good(ctx: JobContext, n: int) -> int:
        ran.append(n)
        return n

    await write_raw_job(redis_url, prefix, "broken-1", record)
    after = await good.enqueue(1)
    stats = await burst(w)

    assert stats["dead"] == 1
    assert stats["complete"] == 1
    assert ran == [1]
    assert await after.result(timeout=5) == 1
    broken = w.job("broken-1")
    info = await broken.info()
    assert info.status is JobStatus.DEAD
    assert info.error is not None
    assert info.error["type"] == "DecodeError"
    assert why in info.error["message"]
    with pytest.raises(JobDead):
        await broken.result(timeout=5)
    assert (await w.client.counts("default"))["dead"] == 1


async def test_stored_arguments_that_do_not_fit_are_dead_bad_arguments(
    make_worker: MakeWorker, redis_url: str, prefix: str
) -> None:
    # an old producer enqueued with the old signature; the new worker needs another argument
    old = make_worker()
    new = make_worker()
    calls: list[tuple[int, str]] = []

    @old.task(name="invoice.send")
    async def send_old(ctx: JobContext, amount: int) -> None:
        raise AssertionError("the producer never runs jobs")

    @new.task(name="invoice.send", retries=3)
    async def send_new(ctx: JobContext, amount: int, currency: str) -> str:
        calls.append((amount, currency))
        return f"{amount} {currency}"

    stale = await send_old.enqueue(10)
    fresh = await send_new.enqueue(20, "EUR")
    body = {"t": "invoice.send", "a": [1, 2, 3], "k": {}}
    await write_raw_job(redis_url, prefix, "too-many", b"1700000000000|" + orjson.dumps(body))
    stats = await burst(new)

    assert calls == [(20, "EUR")]
    assert await fresh.result(timeout=5) == "20 EUR"
    assert stats["dead"] == 2
    assert stats["retry"] == 0
    for job_id in (stale.id, "too-many"):
        info = await new.job(job_id).info()
        assert info.status is JobStatus.DEAD
        assert info.attempts == 1
        assert info.error is not None
        assert info.error["type"] == "BadArguments"
        assert "invoice.send" in info.error["message"]


async def test_result_that_is_not_json_is_dead_without_retries(make_worker: MakeWorker) -> None:
    w = make_worker()
    runs: list[int] = []

    @w.task(retries=3)
    async def leaky(ctx: JobContext) -> object:
        runs.append(ctx.attempt)
        return object()

    @w.task()
    async def fine(ctx: JobContext) -> dict[str, list[int]]:
        return {"ok": [1, 2]}

    bad = await leaky.enqueue()
    good = await fine.enqueue()
    stats = await burst(w)

    assert runs == [1]
    assert stats["dead"] == 1
    assert stats["complete"] == 1
    assert await good.result(timeout=5) == {"ok": [1, 2]}
    info = await bad.info()
    assert info.status is JobStatus.DEAD
    assert info.error is not None
    assert info.error["type"] == "ResultError"
    assert "JSON" in info.error["message"]
    with pytest.raises(JobDead):
        await bad.result(timeout=5)


# -- names: one rule at every entry point ------------------------------------------------

BAD_QUEUE_NAMES = [
    pytest.param("a}{b", id="braces"),
    pytest.param("{x}", id="hash-tag"),
    pytest.param("has space", id="space"),
    pytest.param("new\nline", id="newline"),
    pytest.param("tab\there", id="tab"),
    pytest.param("nul\x00", id="control"),
    pytest.param("", id="empty"),
    pytest.param("x" * 201, id="201-chars"),
]


def _names_value(exc: BaseException, name: str) -> None:
    """The error is one line and names the value (cut when long)."""
    text = str(exc)
    assert "\n" not in text
    assert repr(name if len(name) <= 60 else name[:60] + "...") in text


@pytest.mark.parametrize("bad", BAD_QUEUE_NAMES)
async def test_bad_queue_name_is_refused_at_every_python_entry_point(
    make_worker: MakeWorker, redis_url: str, prefix: str, bad: str
) -> None:
    w = make_worker()

    @w.task(name="t")
    async def t(ctx: JobContext) -> None:
        raise AssertionError("never runs")

    with pytest.raises(ConfigError) as opt:
        t.options(queue=bad)
    _names_value(opt.value, bad)
    with pytest.raises(ConfigError):
        await w.enqueue("t", queue=bad)
    with pytest.raises(ConfigError):  # a spec built by hand, in a bulk enqueue
        await w.enqueue_many([t.call(), JobSpec(task="t", queue=bad)])
    with pytest.raises(ConfigError):
        make_worker(queues={bad: 1})
    with pytest.raises(ConfigError):
        await burst(w, queues=[bad])
    with pytest.raises(ConfigError):
        await w.job("some-id", bad).info()
    # nothing was enqueued nor registered, not even the good spec of the bulk call
    async with redis.asyncio.Redis.from_url(redis_url) as r:
        assert await r.smembers(RegistryKeys(prefix).queues) == set()
    assert await w.client.counts("default") == {"ready": 0, "scheduled": 0, "active": 0, "dead": 0}


async def test_longest_name_and_unusual_printable_names_are_accepted(
    make_worker: MakeWorker,
) -> None:
    w = make_worker()

    @w.task(name="t")
    async def t(ctx: JobContext) -> str:
        return ctx.queue

    names = ["x" * 200, "emails.high-priority", "tenant-42/eu", "café"]
    handles = [await t.options(queue=q).enqueue() for q in names]
    await burst(w, queues=names)
    assert [await h.result(timeout=5) for h in handles] == names


@pytest.mark.parametrize("bad", ["a}{b", "has space", "x" * 201])
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("run", "--burst", "-q"), id="run"),
        pytest.param(("info", "-q"), id="info"),
        pytest.param(("jobs", "--queue"), id="jobs"),
        pytest.param(("pause",), id="pause"),
        pytest.param(("dead", "retry", "--all", "--yes", "--queue"), id="dead"),
        pytest.param(("enqueue", "add", "[1, 2]", "--queue"), id="enqueue"),
    ],
)
async def test_cli_refuses_a_bad_queue_name_with_one_line_and_exit_2(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], bad: str
) -> None:
    command, *rest = argv
    full = [command, "tests.apps.ops:worker", *rest, bad]
    if command == "dead":  # its app comes after the action
        full = ["dead", "retry", "tests.apps.ops:worker", *rest[1:], bad]
    ops.worker = ops.build(redis_url, prefix)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = await asyncio.to_thread(cli_main, full)
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        await ops.worker.close()
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "invalid queue name" in lines[0]


# -- inspection tools skip and flag what they cannot read --------------------------------

OPS_APP = "tests.apps.ops:worker"


async def _cli(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    """Run ``aioworker <argv>`` in-process on the ops test app; (status, stdout, stderr)."""
    capsys.readouterr()
    ops.worker = ops.build(redis_url, prefix)
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        code = await asyncio.to_thread(cli_main, list(argv))
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        await ops.worker.close()
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_inspection_skips_and_flags_bad_registry_entries(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import httpx

    from aioworker.dashboard import create_dashboard

    w = ops.build(redis_url, prefix)
    try:
        for n in range(3):
            await w.enqueue("add", n, 1)
        other = await w.enqueue("add", 9, 9, queue="other")
        async with redis.asyncio.Redis.from_url(redis_url) as r:
            # names written by an older version or by hand, and a queue with a wrong-typed key
            await r.sadd(RegistryKeys(prefix).queues, "a}{b", "has space", b"\xff\xfe", "broken")
            await r.set(QueueKeys(prefix, "broken").ready, "garbage")
            await r.set(QueueKeys(prefix, "broken").jobs, "garbage")
        bad = {"a}{b", "has space", "\\xff\\xfe", "broken"}

        code, out, err = await _cli(
            redis_url, prefix, capsys, "info", "tests.apps.ops:worker", "--json"
        )
        assert code == 0, err
        info = orjson.loads(out)
        counts = {q["name"]: q["ready"] for q in info["queues"]}
        assert counts == {"default": 3, "other": 1}
        assert {s["name"] for s in info["skipped"]} == bad
        reasons = {s["name"]: s["reason"] for s in info["skipped"]}
        assert "invalid queue name" in reasons["a}{b"]
        assert "WRONGTYPE" in reasons["broken"]

        code, out, err = await _cli(redis_url, prefix, capsys, "info", OPS_APP)
        assert code == 0, err
        assert "Traceback" not in err
        assert len([line for line in err.splitlines() if line.startswith("warning: queue ")]) == 4
        assert "default" in out and "other" in out

        code, out, err = await _cli(
            redis_url, prefix, capsys, "jobs", "tests.apps.ops:worker", "--json"
        )
        assert code == 0, err
        pages = orjson.loads(out)
        ready = {p["queue"]: p["total"] for p in pages if p["state"] == "ready"}
        assert ready == {"default": 3, "other": 1}
        assert "warning: queue 'broken' skipped" in err

        # a job looked up in every queue is found past the unreadable one ("broken" < "other")
        code, out, err = await _cli(redis_url, prefix, capsys, "jobs", "show", OPS_APP, other.id)
        assert code == 0, err
        assert "other" in out

        app = create_dashboard(w)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            for path in ("/api/overview", "/api/queues"):
                resp = await c.get(path)
                assert resp.status_code == 200, resp.text
                data = resp.json()
                assert {q["name"]: q["ready"] for q in data["queues"]} == counts
                assert {s["name"] for s in data["skipped"]} == bad
            resp = await c.get("/api/jobs?state=ready")
            assert resp.status_code == 200, resp.text
            assert resp.json()["total"] == 4
    finally:
        await w.close()


# -- numeric enqueue options: bounded, named in the error ---------------------------------

NAN, INF = float("nan"), float("inf")
CENTURY_AND_A_DAY = timedelta(days=36525 + 1)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        pytest.param({"retries": -1}, "retries", id="retries-negative"),
        pytest.param({"retries": 10_001}, "retries", id="retries-absurd"),
        pytest.param({"retries": 2.5}, "retries", id="retries-float"),
        pytest.param({"retries": True}, "retries", id="retries-bool"),
        pytest.param({"delay": NAN}, "delay", id="delay-nan"),
        pytest.param({"delay": INF}, "delay", id="delay-inf"),
        pytest.param({"delay": -1}, "delay", id="delay-negative"),
        pytest.param({"delay": CENTURY_AND_A_DAY}, "delay", id="delay-absurd"),
        pytest.param({"delay": "10"}, "delay", id="delay-str"),
        pytest.param({"timeout": NAN}, "timeout", id="timeout-nan"),
        pytest.param({"timeout": -INF}, "timeout", id="timeout-inf"),
        pytest.param({"timeout": 0}, "timeout", id="timeout-zero"),
        pytest.param({"timeout": 1e12}, "timeout", id="timeout-absurd"),
        pytest.param({"at": datetime(1969, 1, 1, tzinfo=UTC)}, "at", id="at-before-epoch"),
        pytest.param({"at": datetime(9999, 1, 1, tzinfo=UTC)}, "at", id="at-absurd"),
        pytest.param({"at": 1700000000}, "at", id="at-number"),
    ],
)
async def test_bad_numeric_option_raises_enqueue_error_naming_it(
    make_worker: MakeWorker, options: dict[str, Any], named: str
) -> None:
    w = make_worker()

    @w.task(name="t")
    async def t(ctx: JobContext) -> None:
        raise AssertionError("never runs")

    with pytest.raises(EnqueueError, match=rf"^{named} must ") as exc:
        await t.options(**options).enqueue()
    assert "\n" not in str(exc.value)
    assert await w.client.counts("default") == {"ready": 0, "scheduled": 0, "active": 0, "dead": 0}


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("retries", -3, "retries"),
        ("retries", 10**9, "retries"),
        ("timeout_s", NAN, "timeout"),
        ("timeout_s", INF, "timeout"),
        ("delay_ms", -5, "delay_ms"),
        ("delay_ms", 10**15, "delay_ms"),
        ("at_ms", 10**16, "at_ms"),
    ],
)
async def test_hand_built_spec_out_of_bounds_enqueues_nothing(
    make_worker: MakeWorker, field: str, value: object, named: str
) -> None:
    w = make_worker()

    @w.task(name="t")
    async def t(ctx: JobContext) -> None:
        raise AssertionError("never runs")

    bad = JobSpec(task="t", queue="default", **{field: value})  # type: ignore[arg-type]
    with pytest.raises(EnqueueError, match=rf"^{named} must "):
        await w.enqueue_many([t.call(), bad])
    assert await w.client.counts("default") == {"ready": 0, "scheduled": 0, "active": 0, "dead": 0}


async def test_options_at_their_bounds_are_accepted(make_worker: MakeWorker) -> None:
    w = make_worker()

    @w.task(name="t")
    async def t(ctx: JobContext) -> None:
        raise AssertionError("never runs")

    await t.options(retries=MAX_RETRIES, delay=timedelta(days=36525), timeout=MAX_SECONDS).enqueue()
    await t.options(at=datetime.now(UTC) + timedelta(days=36000), retries=0).enqueue()
    await t.options(delay=0).enqueue()
    assert (await w.client.counts("default"))["scheduled"] == 2
    assert (await w.client.counts("default"))["ready"] == 1


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: Unique(ttl=NAN), id="unique-ttl"),
        pytest.param(lambda: Throttle(window=INF), id="throttle-window"),
        pytest.param(lambda: Debounce(window=1, max_wait=NAN), id="debounce-max-wait"),
        pytest.param(lambda: Debounce(window=1, ttl=-1), id="debounce-ttl"),
    ],
)
def test_unique_policies_refuse_nan_infinite_and_negative(build: Any) -> None:
    with pytest.raises(ConfigError, match=" must be "):
        build()


@pytest.mark.parametrize("ttl", [NAN, INF, -1, "1d"])
def test_batch_ttl_refuses_nan_infinite_negative_and_wrong_types(
    make_worker: MakeWorker, ttl: object
) -> None:
    with pytest.raises(ConfigError, match=r"^batch ttl must"):
        make_worker().batch(ttl=ttl)  # type: ignore[arg-type]


async def test_task_level_retries_and_timeout_are_bounded(make_worker: MakeWorker) -> None:
    w = make_worker()

    async def f(ctx: JobContext) -> None:
        raise AssertionError("never runs")

    with pytest.raises(ConfigError, match=r"^retries must"):
        w.task(name="a", retries=20_000)(f)
    with pytest.raises(ConfigError, match=r"^timeout must"):
        w.task(name="b", timeout=NAN)(f)


# -- max_result_bytes ---------------------------------------------------------------------


async def test_result_over_max_result_bytes_is_dead_without_retry(make_worker: MakeWorker) -> None:
    w = make_worker(max_result_bytes=1000)
    runs: list[int] = []

    @w.task(retries=3)
    async def big(ctx: JobContext, n: int) -> str:
        runs.append(ctx.attempt)
        return "x" * n

    over = await big.enqueue(2000)  # 2,002 bytes of JSON
    at_limit = await big.enqueue(998)  # 1,000 bytes: still stored
    stats = await burst(w)

    assert sorted(runs) == [1, 1]  # each ran once: the big one was never retried
    assert stats["dead"] == 1
    assert stats["retry"] == 0
    assert stats["complete"] == 1
    assert await at_limit.result(timeout=5) == "x" * 998
    info = await over.info()
    assert info.status is JobStatus.DEAD
    assert info.attempts == 1
    assert info.error is not None
    assert info.error["type"] == "ResultTooLarge"
    assert "result is 2,002 bytes, over max_result_bytes 1,000" in info.error["message"]
    with pytest.raises(JobDead, match="ResultTooLarge"):
        await over.result(timeout=5)


async def test_default_max_result_bytes_is_one_mib(make_worker: MakeWorker) -> None:
    w = make_worker()
    assert w.max_result_bytes == DEFAULT_MAX_RESULT_BYTES == 1 << 20

    @w.task(retries=2)
    async def big(ctx: JobContext) -> str:
        return "x" * (2 << 20)

    job = await big.enqueue()
    stats = await burst(w)
    assert stats == {**stats, "dead": 1, "retry": 0}
    info = await job.info()
    assert info.error is not None
    assert info.error["type"] == "ResultTooLarge"


@pytest.mark.parametrize("value", [0, 3, -1, 1.5, None])
def test_max_result_bytes_must_be_a_sensible_whole_number(
    make_worker: MakeWorker, value: object
) -> None:
    with pytest.raises(ConfigError, match="max_result_bytes must be"):
        make_worker(max_result_bytes=value)


# -- chosen job ids ------------------------------------------------------------------------

BAD_JOB_IDS = [
    pytest.param("", id="empty"),
    pytest.param("x" * 257, id="too-long"),
    pytest.param("a\nb", id="newline"),
    pytest.param("a\x00b", id="nul"),
    pytest.param("tab\there", id="tab"),
    pytest.param("esc\x1b[2J", id="escape"),
]


@pytest.mark.parametrize("bad", BAD_JOB_IDS)
async def test_bad_job_id_raises_enqueue_error_naming_it(make_worker: MakeWorker, bad: str) -> None:
    w = make_worker()

    @w.task(name="t")
    async def t(ctx: JobContext) -> None:
        raise AssertionError("never runs")

    shown = repr(bad if len(bad) <= 60 else bad[:60] + "...")
    with pytest.raises(EnqueueError, match="invalid job_id") as exc:
        await t.options(job_id=bad).enqueue()
    assert shown in str(exc.value) and "\n" not in str(exc.value)
    spec = JobSpec(task="t", queue="default", job_id=bad)  # built by hand: checked too
    with pytest.raises(EnqueueError, match="invalid job_id"):
        await w.enqueue_many([t.call(), spec])
    assert await w.client.counts("default") == {"ready": 0, "scheduled": 0, "active": 0, "dead": 0}


async def test_unusual_printable_job_ids_are_accepted_and_run(make_worker: MakeWorker) -> None:
    w = make_worker()
    ran: list[str] = []

    @w.task(name="t")
    async def t(ctx: JobContext) -> None:
        ran.append(ctx.job_id)

    ids = ["x" * 256, "a}{b", "{other-queue}", "with space", "a|b|ok", "ünïcode-✓"]
    handles = [await t.options(job_id=i).enqueue() for i in ids]
    assert [h.id for h in handles] == ids
    await burst(w)
    assert sorted(ran) == sorted(ids)
    for h in handles:
        assert (await h.info()).status is JobStatus.COMPLETE


async def test_cli_enqueue_refuses_a_bad_job_id_with_one_line(
    redis_url: str, prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = await _cli(
        redis_url, prefix, capsys, "enqueue", OPS_APP, "add", "[1, 2]", "--job-id", "a\nb"
    )
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "invalid job_id" in lines[0], err
    assert out == ""
