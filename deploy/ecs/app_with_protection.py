"""A worker that asks ECS not to scale its task in while it runs jobs.

``stopTimeout`` (at most 120 s on Fargate) must exceed ``shutdown_grace`` + ``cancel_grace``
+ a second or two; see task-definition.json beside this file.
"""

from __future__ import annotations

from aioworker import JobContext, Worker
from aioworker.ecs import EcsTaskProtection

protection = EcsTaskProtection(expires_in_minutes=60)

worker = Worker(
    queues={"default": 200},
    shutdown_grace=110,
    cancel_grace=5,
    on_busy=[protection.on_busy],
    on_idle=[protection.on_idle],
    protect="non_interruptible",  # only jobs that must not be interrupted block scale-in
)


@worker.task(interruptible=False, timeout=3600)
async def monthly_close(ctx: JobContext, month: str) -> str:
    ...
    return month
