"""The ``aioworker`` command line: ``aioworker run app:worker`` and friends."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .errors import BrokerUnavailable, ConfigError, ImportStringError
from .importer import import_worker
from .logs import setup_logging

__all__ = ("main",)

log = logging.getLogger("aioworker.cli")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aioworker", description="asyncio worker runtime on Redis")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a worker process")
    run.add_argument("app", help='the Worker to run, as "module:attribute", e.g. app:worker')
    run.add_argument(
        "--redis-url",
        default=None,
        help="Redis URL (default: $AIOWORKER_REDIS_URL, then the worker's own setting)",
    )
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
    run.add_argument(
        "--health-port",
        type=int,
        default=int(os.environ["AIOWORKER_HEALTH_PORT"])
        if os.environ.get("AIOWORKER_HEALTH_PORT")
        else None,
        help="serve /livez and /readyz on this port (default $AIOWORKER_HEALTH_PORT)",
    )
    run.add_argument("--log-level", default=os.environ.get("AIOWORKER_LOG_LEVEL", "INFO"))
    run.add_argument("--log-format", choices=("text", "json"), default="text")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the process exit status."""
    args = _parser().parse_args(argv)
    setup_logging(args.log_level, args.log_format)
    if args.command == "run":
        return _run(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _run(args: argparse.Namespace) -> int:
    try:
        worker = import_worker(args.app)
        url = args.redis_url or os.environ.get("AIOWORKER_REDIS_URL")
        if url:
            worker.configure(redis_url=url)
        if args.health_port is not None:
            worker.health_port = args.health_port
        if args.shutdown_grace is not None:
            worker.shutdown_grace_s = args.shutdown_grace
        if args.concurrency is not None and args.concurrency < 1:
            raise ConfigError("--concurrency must be at least 1")
        worker.run_sync(queues=args.queues, concurrency=args.concurrency, burst=args.burst)
    except ImportStringError as exc:
        log.error("%s", exc)
        return 2
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return 2
    except BrokerUnavailable as exc:
        log.error("%s", exc)
        return 3
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
