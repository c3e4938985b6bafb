"""Run by the tracing test as ``python -m tests.apps.traced``: set up the OpenTelemetry SDK
with an in-memory exporter, enqueue jobs inside and outside a request span, run a burst
worker, and print the finished spans as JSON lines.

Reads ``AIOWORKER_REDIS_URL`` and ``TEST_PREFIX``.
"""

from __future__ import annotations

import asyncio
import os
import sys

import orjson
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from aioworker import JobContext, Worker

__all__ = ("main",)


async def run() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    tracer = trace.get_tracer("tests.apps.traced")

    w = Worker(os.environ["AIOWORKER_REDIS_URL"], prefix=os.environ["TEST_PREFIX"])

    @w.task(name="traced")
    async def traced(ctx: JobContext, n: int) -> int:
        with tracer.start_as_current_span("inside"):
            return n

    @w.task(name="broken", retries=0)
    async def broken(ctx: JobContext) -> None:
        raise ValueError("no")

    with tracer.start_as_current_span("request"):
        inside = await traced.enqueue(1)
        failing = await broken.enqueue()
    outside = await traced.enqueue(2)
    await w.run(burst=True, handle_signals=False)
    await w.close()
    ids = {"inside": inside.id, "failing": failing.id, "outside": outside.id}
    sys.stdout.write(orjson.dumps({"jobs": ids}).decode() + "\n")
    for span in exporter.get_finished_spans():
        ctx = span.get_span_context()
        assert ctx is not None
        sys.stdout.write(
            orjson.dumps(
                {
                    "name": span.name,
                    "kind": span.kind.name,
                    "trace": format(ctx.trace_id, "032x"),
                    "span": format(ctx.span_id, "016x"),
                    "parent": format(span.parent.span_id, "016x") if span.parent else None,
                    "status": span.status.status_code.name,
                    "attributes": dict(span.attributes or {}),
                }
            ).decode()
            + "\n"
        )


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
