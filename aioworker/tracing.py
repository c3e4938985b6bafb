"""OpenTelemetry: a job's span continues the trace of the code that enqueued it.

Optional: install ``aioworker[otel]`` (``opentelemetry-api``).  Without it nothing here
does anything.  OpenTelemetry is used only once the application itself has imported it
(looked up at each call), so a process that does not trace pays neither the import nor
any work per job.

- **Enqueue**: when a span is current (a FastAPI request span, say), its W3C trace
  context is injected with the global propagator and stored in the job's payload under
  ``tc`` (``{"traceparent": ..., "tracestate": ...}``).  One dict per enqueue call; no
  network round trip.
- **Run**: a worker whose process has a real tracer provider configured (the
  OpenTelemetry SDK's, set before the worker starts) wraps every run of a job in a
  ``CONSUMER`` span named ``process <task>``, child of the stored context, with the
  attributes ``messaging.system=aioworker``, ``messaging.destination.name`` (queue),
  ``messaging.message.id`` (job id), ``aioworker.task``, ``aioworker.attempt`` and, at
  the end, ``aioworker.outcome``.  The span is current while the job's function runs, so
  spans the job opens are its children.  Outcomes ``retry`` and ``dead`` set the status
  to ERROR.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .job import JobRecord

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = ("PAYLOAD_KEY", "JobTracer", "trace_context", "tracing_available")

#: The payload key holding the enqueuer's trace context.
PAYLOAD_KEY = "tc"


def _otel() -> tuple[ModuleType, ModuleType, ModuleType] | None:
    """(trace, propagate, context) once the application has imported OpenTelemetry."""
    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import context, propagate, trace

    return trace, propagate, context


def tracing_available() -> bool:
    """True when the application uses OpenTelemetry and a real tracer provider is set."""
    otel = _otel()
    if otel is None:
        return False
    trace = otel[0]
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def trace_context() -> dict[str, Any] | None:
    """``{"tc": {...}}`` for the payload when a valid span is current, else None."""
    otel = _otel()
    if otel is None:
        return None
    trace, propagate, _ = otel
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {PAYLOAD_KEY: carrier} if carrier else None


class JobTracer:
    """An :class:`~aioworker.extensions.Observer` that runs each job inside a span."""

    def __init__(self) -> None:
        otel = _otel()
        assert otel is not None, "OpenTelemetry is not in use"
        self.trace, self.propagate, self.context = otel
        self.tracer = self.trace.get_tracer("aioworker")
        self._open: dict[str, tuple[Span, object]] = {}

    def job_started(self, job: JobRecord) -> None:
        carrier = job.payload.get(PAYLOAD_KEY)
        parent = self.propagate.extract(carrier) if isinstance(carrier, dict) else None
        span = self.tracer.start_span(
            f"process {job.task}",
            context=parent,
            kind=self.trace.SpanKind.CONSUMER,
            attributes={
                "messaging.system": "aioworker",
                "messaging.operation.type": "process",
                "messaging.destination.name": job.queue,
                "messaging.message.id": job.id,
                "aioworker.task": job.task,
                "aioworker.attempt": job.attempt,
            },
        )
        # attached in the job's own asyncio task: the job's function sees it as current
        token = self.context.attach(self.trace.set_span_in_context(span))
        self._open[job.id] = (span, token)

    def job_finished(self, job: JobRecord, outcome: str, duration_s: float) -> None:
        opened = self._open.pop(job.id, None)
        if opened is None:
            return  # never started running (bad arguments, deferred by a gate)
        span, token = opened
        span.set_attribute("aioworker.outcome", outcome)
        if outcome in ("retry", "dead"):
            span.set_status(
                self.trace.Status(self.trace.StatusCode.ERROR, f"job outcome: {outcome}")
            )
        span.end()
        self.context.detach(token)
