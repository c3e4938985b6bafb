"""An app with the dashboard mounted in FastAPI behind a password.

Run the API (and its dashboard at http://127.0.0.1:8000/jobs/) and a worker::

    DASHBOARD_PASSWORD=s3cret uvicorn examples.dashboard.app:app
    aioworker run examples.dashboard.app:worker

or the dashboard alone, on 127.0.0.1, without a password::

    aioworker dashboard examples.dashboard.app:worker

``docs/screenshots.py`` runs this app under load to take the README's screenshots.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import os
import random
import secrets

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.requests import Request

from aioworker import GCRA, JobContext, Worker
from aioworker.dashboard import create_dashboard
from aioworker.lifespan import lifespan

worker = Worker(queues={"default": 200, "mail": 50, "reports": 4})


class MailServerBusy(Exception):
    """The mail relay asked us to come back later."""


class CardDeclined(Exception):
    """The payment provider declined the charge."""


@worker.task(name="send_email", queue="mail", retries=2, timeout=30)
async def send_email(ctx: JobContext, to: str, template: str) -> str:
    await asyncio.sleep(random.uniform(0.05, 0.4))  # the mail relay's round trip
    if random.random() < 0.04:
        raise MailServerBusy("451 4.7.1 greylisted by the receiving server, try again later")
    return "sent"


@worker.task(name="resize_image", timeout=60)
async def resize_image(ctx: JobContext, image_id: int, width: int = 800) -> dict[str, int]:
    await asyncio.sleep(random.uniform(0.02, 0.2))
    return {"image_id": image_id, "width": width}


@worker.task(name="charge_card", retries=0, rate_limit=GCRA("stripe", 25, per=1, burst=5))
async def charge_card(ctx: JobContext, invoice_id: int, cents: int) -> str:
    await asyncio.sleep(random.uniform(0.1, 0.3))
    if random.random() < 0.03:
        raise CardDeclined("card_declined: insufficient_funds")
    return f"ch_{invoice_id}"


@worker.task(name="build_report", queue="reports", timeout=3600)
async def build_report(ctx: JobContext, month: str, minutes: float = 5) -> str:
    steps = int(minutes * 60)
    for step in range(ctx.state or 0, steps):
        await asyncio.sleep(1)
        if step % 10 == 0:
            await ctx.checkpoint(step)
    return f"report-{month}.pdf"


@worker.task(name="sync_crm", global_concurrency=3)
async def sync_crm(ctx: JobContext, account_id: int) -> None:
    await asyncio.sleep(random.uniform(0.5, 2.0))


@worker.cron("0 3 * * *", tz="Europe/Paris", name="nightly-cleanup")
async def nightly_cleanup(ctx: JobContext) -> int:
    return 0


@worker.cron(every=300, name="refresh-exchange-rates")
async def refresh_rates(ctx: JobContext) -> None:
    await asyncio.sleep(0.1)


@worker.cron("*/15 * * * *", name="crm-sync", queue="default")
async def crm_sync(ctx: JobContext) -> None:
    await asyncio.sleep(0.1)


def require_admin(request: Request) -> bool:
    """HTTP Basic auth against ``$DASHBOARD_PASSWORD`` (any user name); the browser asks."""
    expected = os.environ.get("DASHBOARD_PASSWORD")
    if not expected:
        return False  # no password configured: nobody gets in (403)
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        _, _, given = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        given = ""
    if scheme.lower() == "basic" and secrets.compare_digest(given, expected):
        return True
    raise HTTPException(401, headers={"WWW-Authenticate": 'Basic realm="jobs"'})


app = FastAPI(lifespan=lifespan(worker))
app.mount("/jobs", create_dashboard(worker, auth=require_admin))


@app.post("/signup")
async def signup(email: str) -> dict[str, str]:
    job = await send_email.enqueue(email, template="welcome")
    return {"job_id": job.id}
