"""Pieces shared by the commands: common options, loading the app, exit statuses."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..errors import (
    AioworkerError,
    BrokerUnavailable,
    ConfigError,
    ImportStringError,
    RedisRefused,
)
from ..importer import import_worker
from ..process import run_in_new_loop

if TYPE_CHECKING:
    from ..worker import Worker

__all__ = (
    "EXIT_FAILED",
    "EXIT_REDIS",
    "EXIT_USAGE",
    "add_app_arguments",
    "common",
    "guarded",
    "load_worker",
    "run_async",
)

log = logging.getLogger("aioworker.cli")

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_REDIS = 3


def common() -> argparse.ArgumentParser:
    """Options every command takes (given after the command's name)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "--log-level", default=os.environ.get("AIOWORKER_LOG_LEVEL", "INFO"), help="default INFO"
    )
    parent.add_argument("--log-format", choices=("text", "json"), default="text")
    return parent


def add_app_arguments(parser: argparse.ArgumentParser) -> None:
    """The app import string and --redis-url."""
    parser.add_argument("app", help='the Worker, as "module:attribute", e.g. app:worker')
    parser.add_argument(
        "--redis-url",
        default=None,
        help="Redis URL (default: $AIOWORKER_REDIS_URL, then the worker's own setting)",
    )
    parser.add_argument(
        "--cluster",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Redis Cluster or a single node (default: $AIOWORKER_CLUSTER, then the "
        "worker's own setting, then ask the server)",
    )


def load_worker(args: argparse.Namespace) -> Worker:
    """Import the app's Worker and apply --redis-url (raises ImportStringError)."""
    worker = import_worker(args.app)
    url = args.redis_url or os.environ.get("AIOWORKER_REDIS_URL")
    if url:
        worker.configure(redis_url=url)
    if getattr(args, "cluster", None) is not None:
        worker.configure(cluster=args.cluster)
    return worker


def run_async(fn: Callable[[], Awaitable[int]]) -> int:
    """Run a command's coroutine (on uvloop) with :func:`guarded`'s error handling."""
    return guarded(lambda: run_in_new_loop(_call(fn)))


def guarded(fn: Callable[[], int]) -> int:
    """Run a command and map errors to exit statuses with one clear line, no traceback."""
    try:
        return fn()
    except ImportStringError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except RedisRefused as exc:  # the broker cannot be used as configured
        log.error("%s", exc)
        return EXIT_REDIS
    except ConfigError as exc:
        log.error("configuration error: %s", exc)
        return EXIT_USAGE
    except BrokerUnavailable as exc:
        log.error("%s", exc)
        return EXIT_REDIS
    except AioworkerError as exc:
        log.error("%s", exc)
        return EXIT_FAILED


async def _call(fn: Callable[[], Awaitable[int]]) -> int:
    return await fn()
