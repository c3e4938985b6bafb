"""``aioworker run app:worker``: run a worker process."""

from __future__ import annotations

import argparse
import os
from typing import Any

from ..errors import ConfigError
from .common import add_app_arguments, common, guarded, load_worker

__all__ = ("register",)


def register(sub: Any) -> None:
    run: argparse.ArgumentParser = sub.add_parser(
        "run", help="run a worker process", parents=[common()]
    )
    add_app_arguments(run)
    run.add_argument(
        "-q",
        "--queue",
        action="append",
        dest="queues",
        metavar="NAME[:WEIGHT]",
        help="serve this queue (repeatable; order is priority, or give weights)",
    )
    run.add_argument("--concurrency", type=int, default=None, help="process-wide cap on jobs")
    run.add_argument("--burst", action="store_true", help="exit when the queues are drained")
    run.add_argument("--shutdown-grace", type=float, default=None, help="seconds (default 25)")
    health = os.environ.get("AIOWORKER_HEALTH_PORT")
    run.add_argument(
        "--health-port",
        type=int,
        default=int(health) if health else None,
        help="serve /livez and /readyz on this port (default $AIOWORKER_HEALTH_PORT)",
    )
    metrics = os.environ.get("AIOWORKER_METRICS_PORT")
    run.add_argument(
        "--metrics-port",
        type=int,
        default=int(metrics) if metrics else None,
        help="serve Prometheus /metrics on this port (default $AIOWORKER_METRICS_PORT; "
        "needs aioworker[metrics])",
    )
    run.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    def go() -> int:
        worker = load_worker(args)
        if args.health_port is not None:
            worker.health_port = args.health_port
        if args.metrics_port is not None:
            worker.metrics_port = args.metrics_port
        if args.shutdown_grace is not None:
            worker.shutdown_grace_s = args.shutdown_grace
        if args.concurrency is not None and args.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        worker.run_sync(queues=args.queues, concurrency=args.concurrency, burst=args.burst)
        return 0

    return guarded(go)
