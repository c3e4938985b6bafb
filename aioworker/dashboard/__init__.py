"""A web dashboard for operators: an ASGI app built on Starlette.

Mount it inside a FastAPI (or Starlette) app, or run it alone with
``aioworker dashboard app:worker``::

    from fastapi import FastAPI
    from aioworker.dashboard import create_dashboard
    from aioworker.lifespan import lifespan

    app = FastAPI(lifespan=lifespan(worker))
    app.mount("/jobs", create_dashboard(worker, read_only=False, auth=is_admin))

Pages: queues (live counts, throughput and backlog charts), running, scheduled and dead
jobs (error, traceback, retry and delete buttons), one job's detail, workers, periodic
schedules, batches (progress bars) and limiters.  The pages are static HTML, CSS and one
small JavaScript file shipped with the package (no front-end build step); they poll the
JSON API documented in :mod:`aioworker.dashboard.app` and redraw without reloading.

- ``read_only=True``: every mutating endpoint answers 403 and no button is shown.
- ``show_args=False`` (the default): job arguments, results, checkpoints and step values
  are left out of every page and every API response (``"hidden": true`` tells they exist).
- ``auth``: a callable given the Starlette ``Request`` (plain or async) that returns True
  to let it through, False for 403, or raises ``HTTPException`` (e.g. 401 with a
  ``WWW-Authenticate`` header to ask for a password).  It runs before every request,
  static files included.

Needs the optional dependencies: ``pip install 'aioworker[dashboard]'`` (Starlette, and
uvicorn for the standalone command).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..errors import MissingDependency

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from ..worker import Worker

__all__ = ("AuthHook", "create_dashboard", "require_dashboard_deps")

AuthHook = Callable[[Any], "bool | Awaitable[bool]"]
"""Given the request; True lets it through, False answers 403, an HTTPException is sent."""

INSTALL = "pip install 'aioworker[dashboard]'"


def require_dashboard_deps(*, server: bool = False) -> None:
    """Check that the dashboard's optional packages are installed.

    :param server: also check for uvicorn (the standalone command).
    :raises MissingDependency: naming the ``pip install`` command.
    """
    try:
        import starlette  # noqa: F401
    except ImportError:
        raise MissingDependency(f"the dashboard needs Starlette: {INSTALL}") from None
    if server:
        try:
            import uvicorn  # noqa: F401
        except ImportError:
            raise MissingDependency(f"the standalone dashboard needs uvicorn: {INSTALL}") from None


def create_dashboard(
    worker: Worker,
    *,
    read_only: bool = False,
    show_args: bool = False,
    auth: AuthHook | None = None,
    refresh_s: float = 2.0,
) -> Starlette:
    """The dashboard of one app, as an ASGI app to mount or serve.

    :param worker: the app's :class:`~aioworker.Worker` (its Redis, prefix, queues, tasks,
        schedules and limiters); nothing runs jobs here.
    :param read_only: refuse every action (403) and show no buttons.
    :param show_args: show job arguments, results and checkpoints (hidden by default).
    :param auth: called with each request before it is served (see the module docstring).
    :param refresh_s: seconds between the pages' refreshes.
    :returns: a Starlette application.
    :raises MissingDependency: if Starlette is not installed.
    :raises ConfigError: if ``refresh_s`` is not positive.
    """
    require_dashboard_deps()
    from .app import build_app

    return build_app(
        worker, read_only=read_only, show_args=show_args, auth=auth, refresh_s=refresh_s
    )
