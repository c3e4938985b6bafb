"""The quick-start application: run it with ``aioworker run examples.quickstart.app:worker``."""

from __future__ import annotations

import asyncio

from aioworker import JobContext, Worker

worker = Worker(queues={"default": 500, "mail": 50})


@worker.task(queue="mail", retries=5, timeout=30)
async def send_email(ctx: JobContext, to: str, subject: str) -> str:
    await asyncio.sleep(0.05)  # stands in for a call to a mail service
    return f"sent {subject!r} to {to}"


@worker.task()
async def resize_image(ctx: JobContext, image_id: int, width: int = 800) -> dict[str, int]:
    await asyncio.sleep(0.02)
    return {"image_id": image_id, "width": width}
