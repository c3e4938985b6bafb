"""A worker app with a service that always fails, and loops given up on quickly, for the
test of the exit status of an unhealthy worker."""

from __future__ import annotations

import os

from aioworker import Worker
from aioworker.extensions import RunContext

worker = Worker(
    prefix=os.environ.get("TEST_PREFIX", "aioworker"),
    loop_unhealthy_after=0.2,
    loop_exit_after=1.0,
)


@worker.service
async def always_broken(rt: RunContext) -> None:
    raise RuntimeError("this service cannot start")
