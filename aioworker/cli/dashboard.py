"""``aioworker dashboard app:worker``: serve the web dashboard on its own with uvicorn.

Needs ``pip install 'aioworker[dashboard]'``.  It listens on 127.0.0.1 by default; the
standalone dashboard has no authentication (mount it in your own app with ``auth=`` for
that, see :mod:`aioworker.dashboard`), so a warning is logged when it listens elsewhere.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
from typing import Any

from ..dashboard import create_dashboard, require_dashboard_deps
from .common import add_app_arguments, common, load_worker, run_async

__all__ = ("register",)

log = logging.getLogger("aioworker.cli")


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "dashboard", help="serve the web dashboard", parents=[common()]
    )
    add_app_arguments(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--read-only", action="store_true", help="refuse every action (pause, retry, delete...)"
    )
    p.add_argument(
        "--show-args", action="store_true", help="show job arguments, results and checkpoints"
    )
    p.add_argument(
        "--refresh", type=float, default=2.0, help="seconds between page refreshes (default 2)"
    )
    p.add_argument(
        "--root-path", default="", help="the path prefix when served behind a proxy, e.g. /jobs"
    )
    p.set_defaults(handler=lambda args: run_async(lambda: _serve(args)))


async def _serve(args: argparse.Namespace) -> int:
    require_dashboard_deps(server=True)
    # imported here, not at the top: uvicorn is an optional dependency (the dashboard
    # extra), and every other command must work without it
    import uvicorn

    worker = load_worker(args)
    try:
        await worker.client.broker.connect()  # a wrong URL fails here, with one clear line
        app = create_dashboard(
            worker, read_only=args.read_only, show_args=args.show_args, refresh_s=args.refresh
        )
        if not _is_loopback(args.host):
            log.warning(
                "the dashboard listens on %s without authentication: keep it on a private "
                "network, or mount it in your app with create_dashboard(worker, auth=...)",
                args.host,
            )
        log.info(
            "dashboard of %s on http://%s:%d%s/ (%s, job arguments %s)",
            args.app,
            args.host,
            args.port,
            args.root_path.rstrip("/"),
            "read-only" if args.read_only else "actions allowed",
            "shown" if args.show_args else "hidden",
        )
        config = uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            root_path=args.root_path.rstrip("/"),
        )
        await uvicorn.Server(config).serve()
    finally:
        await worker.close()
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
