"""The monthly billing example runs end to end: fan-out, report, re-run, on_success."""

from __future__ import annotations

import sys

import pytest

from tests.worker_procs import ProcessSpawner

pytestmark = pytest.mark.slow


async def test_monthly_billing_example_bills_reports_and_reruns_the_failed(
    redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    spawner = ProcessSpawner(tmp_path_factory.mktemp("billing"))
    try:
        proc = spawner.spawn(
            [
                sys.executable,
                "-m",
                "examples.monthly_billing.run",
                "--companies",
                "60",
                "--retry-failed",
            ],
            env={"AIOWORKER_REDIS_URL": redis_url, "BILLING_DECLINE_EVERY": "25"},
        )
        code = await spawner.wait_exit(proc, timeout_s=90)
        text = spawner.output(proc)
    finally:
        spawner.close()
    assert code == 0, text
    # companies 7, 32 and 57 have a declined card
    assert "60/60 companies done (57 billed, 3 failed), 0 pending, complete" in text
    assert "  companies: 60\n  billed: 57\n  failed: 3\n" in text
    assert "aioworker batch retry examples.monthly_billing.app:worker billing-" in text
    assert "the 3 companies updated their cards; re-running them" in text
    assert "closed, 60/60 billed" in text
