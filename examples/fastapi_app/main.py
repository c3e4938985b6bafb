"""A FastAPI app that enqueues jobs from its endpoints.

Run the API with ``uvicorn examples.fastapi_app.main:app`` and the worker with
``aioworker run examples.quickstart.app:worker``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, HTTPException

from aioworker import JobNotFound
from aioworker.lifespan import lifespan
from examples.quickstart.app import send_email, worker

app = FastAPI(lifespan=lifespan(worker))


@app.post("/signup")
async def signup(email: str) -> dict[str, str]:
    job = await send_email.enqueue(email, subject="Welcome!")
    return {"job_id": job.id}


@app.get("/jobs/{job_id}")
async def job_status(job_id: str) -> dict[str, Any]:
    info = await worker.job(job_id, queue=send_email.queue).info()
    if info.status == "not_found":
        raise HTTPException(404, f"job {job_id} not found")
    return {"status": info.status, "result": info.result, "attempts": info.attempts}


@app.get("/jobs/{job_id}/result")
async def job_result(job_id: str, wait_s: float = 10.0) -> dict[str, Any]:
    try:
        result = await worker.job(job_id, queue=send_email.queue).result(timeout=wait_s)
    except JobNotFound:
        raise HTTPException(404, f"job {job_id} not found") from None
    return {"result": result}
