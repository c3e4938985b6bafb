"""``aioworker bench``: benchmark an app's own task, as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent


def bench(redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    env = {
        **os.environ,
        "AIOWORKER_REDIS_URL": redis_url,
        "TEST_PREFIX": prefix,
        "PYTHONPATH": str(ROOT),
    }
    argv = [sys.executable, "-m", "aioworker", "bench", "tests.apps.basic:worker", *args]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, timeout=120)


def test_bench_runs_the_jobs_and_reports_figures_as_json(redis_url: str, prefix: str) -> None:
    done = bench(
        redis_url, prefix, "add", "--args", "[2, 3]", "--jobs", "300", "--concurrency", "50",
        "--json", "--log-level", "WARNING",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    report = orjson.loads(done.stdout)
    assert report["task"] == "add" and report["jobs"] == 300 and report["mode"] == "in-process"
    assert report["outcomes"]["complete"] == 300
    assert report["jobs_per_s"] > 0 and report["enqueue_per_s"] > 0
    assert set(report["latency_ms"]) == {"p50", "p90", "p99", "max"}
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p99"]
    # scripts do the work: far fewer round trips than Redis commands
    assert 0 < report["redis_calls_per_job"] < report["redis_commands_per_job"]


def test_bench_explains_bad_input(redis_url: str, prefix: str) -> None:
    unknown = bench(redis_url, prefix, "no.such.task", "--jobs", "10")
    assert unknown.returncode == 1
    assert b"no task named 'no.such.task'" in unknown.stderr
    bad_args = bench(redis_url, prefix, "add", "--args", "{not json")
    assert bad_args.returncode == 2
    assert b"--args/--kwargs must be JSON" in bad_args.stderr
    assert b"Traceback" not in unknown.stderr + bad_args.stderr
