"""What a worker process publishes about itself while it runs.

:class:`Instruments` is set up by :meth:`Worker.run <aioworker.Worker.run>` around one
runtime: the worker registry record (:mod:`aioworker.registry`), the watcher of cancel
requests (:mod:`aioworker.cancellation`), job fields for log lines
(:mod:`aioworker.logfields`), and, when enabled, Prometheus metrics
(:mod:`aioworker.metrics`) and OpenTelemetry spans (:mod:`aioworker.tracing`).  Its
observers and services are added to the run's own lists (the worker's are not touched).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .cancellation import CancelWatcher
from .extensions import Observer, Service
from .health import HealthServer
from .logfields import JobLogFields
from .registry import WorkerRegistry
from .tracing import JobTracer, tracing_available

if TYPE_CHECKING:
    from .metrics import Metrics
    from .runtime import Runtime

__all__ = ("Instruments",)

log = logging.getLogger("aioworker.worker")


class Instruments:
    """The registry record, cancel watcher, log fields, metrics and tracing of a run.

    :param runtime: the runtime about to start (its settings' ``metrics_port`` turns
        metrics on).
    :raises MissingDependency: if metrics are asked for without ``prometheus-client``.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.settings = runtime.settings
        self.runtime = runtime
        self.registry = WorkerRegistry(runtime)
        self.cancel = CancelWatcher(runtime)
        self.metrics: Metrics | None = None
        self._server: HealthServer | None = None
        observers: list[Observer] = [JobLogFields(), self.cancel]
        services: list[Service] = [self.cancel.run]
        if self.settings.metrics_port is not None:
            from .metrics import Metrics

            self.metrics = Metrics(runtime)
            observers.append(self.metrics)
            services.append(self.metrics.run)
        if tracing_available():
            observers.append(JobTracer())
        self.observers = observers
        self.services = services

    def install(self) -> None:
        """Add the observers and services to the run (before the runtime starts)."""
        self.runtime.observers.extend(self.observers)
        self.runtime.services.extend(self.services)

    async def start(self, health: HealthServer | None) -> None:
        """Publish the registry record and serve metrics (after the runtime started).

        :param health: the worker's health server; metrics are served on it when both
            use the same port, else on a server of their own.
        """
        await self.registry.start()
        if self.metrics is not None:
            port = self.settings.metrics_port
            if health is not None and port in (health.port, self.settings.health_port):
                health.route("/metrics", self.metrics.route)
            else:
                rt = self.runtime
                self._server = HealthServer(rt.liveness, rt.readiness, port=port or 0)
                self._server.route("/metrics", self.metrics.route)
                await self._server.start()
            served = self._server or health
            log.info("metrics on port %d at /metrics", served.port if served else 0)

    async def stop(self) -> None:
        """Remove the registry record and stop serving metrics."""
        await self.registry.stop()
        if self._server is not None:
            await self._server.stop()
            self._server = None
