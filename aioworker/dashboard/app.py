"""The dashboard's HTTP side: pages, static files, the JSON API and the actions.

Every path is relative to where the app is mounted.  Pages (the same HTML shell; the
script draws each page from the API and redraws it every ``refresh_s``)::

    GET  /  /running  /scheduled  /dead  /ready  /workers  /schedules  /batches
         /limiters  /job?queue=Q&id=ID
    GET  /static/<file>                     the script, stylesheet and icon

The JSON API (times in ISO 8601 UTC; job arguments, results and checkpoints are null
with ``"hidden": true`` unless ``show_args``)::

    GET  /api/config                        {"read_only", "show_args", "refresh_s"}
    GET  /api/overview                      {"queues": [...], "totals": {...},
                                             "history": {"t", "jobs_per_s", "ready", ...}}
    GET  /api/queues                        {"queues": [{"name", "ready", "scheduled",
                                             "running", "dead", "paused", ...}]}
    GET  /api/jobs?state=S[&queue=Q][&offset=N][&limit=N]
                                            {"state", "queue", "total", "offset", "jobs"};
                                            S: ready|scheduled|running|dead; without a
                                            queue, every queue (no offset)
    GET  /api/jobs/<queue>/<id>             one job: status, task, attempts, times,
                                            error {"type", "message", "traceback"}, ...
    GET  /api/find/<id>                     the same, looked up in every known queue
    GET  /api/workers                       {"workers": [...]}
    GET  /api/schedules                     {"schedules": [...]}
    GET  /api/batches[?limit=N&offset=N]    {"batches": [...]} with counts and state
    GET  /api/limiters                      {"limiters": [...]}

The actions (POST with a JSON body, ``Content-Type: application/json``; any other
content type answers 415, which keeps plain cross-site form posts out; all answer 403
in read-only mode)::

    POST /api/queues/<queue>/pause          {"queue", "paused", "changed"}
    POST /api/queues/<queue>/resume         {"queue", "paused", "changed"}
    POST /api/dead/<queue>/retry            body {"ids": [...]} | {"task": T} | {"all": true}
                                            -> {"queue", "retried"}
    POST /api/dead/<queue>/delete           same body -> {"queue", "deleted"}
    POST /api/jobs/<queue>/<id>/cancel      {"id", "queue", "outcome", "where"}
    POST /api/schedules/<name>/pause        the schedule
    POST /api/schedules/<name>/resume       the schedule
    POST /api/schedules/<name>/run          {"job_id"}
    POST /api/batches/<id>/cancel           {"id", "cancelled"}

Errors answer JSON ``{"error": "..."}``: 400 bad input, 403 refused (auth hook or
read-only), 404 unknown job, schedule or batch, 415 not JSON, 503 Redis unavailable.
"""

from __future__ import annotations

import functools
import hashlib
import html
import inspect
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..admin import Admin
from ..broker import TRANSIENT_ERRORS
from ..errors import BatchNotFound, BrokerUnavailable, ConfigError, UnknownScheduleError
from ..inspect import to_jsonable
from .views import Views

if TYPE_CHECKING:
    from ..worker import Worker
    from . import AuthHook

__all__ = ("PAGES", "build_app")

log = logging.getLogger("aioworker.dashboard")

#: Page name -> title in the navigation ("" for pages reached by links only).
PAGES = {
    "queues": "Queues",
    "running": "Running",
    "scheduled": "Scheduled",
    "dead": "Dead",
    "workers": "Workers",
    "schedules": "Schedules",
    "batches": "Batches",
    "limiters": "Limiters",
    "ready": "",
    "job": "",
}

STATIC = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

#: Most ids one retry or delete request may name.
MAX_IDS = 10_000

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

Endpoint = Callable[[Request], Awaitable[Response]]


class ApiError(Exception):
    """An answer other than 200, with a message for the JSON body."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _json(data: Any, status: int = 200) -> Response:
    body = orjson.dumps(to_jsonable(data), default=str)
    return Response(
        body,
        status_code=status,
        media_type="application/json",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _load_static() -> dict[str, bytes]:
    folder = resources.files(__package__ or "aioworker.dashboard").joinpath("static")
    return {name: folder.joinpath(name).read_bytes() for name in STATIC}


def build_app(
    worker: Worker,
    *,
    read_only: bool,
    show_args: bool,
    auth: AuthHook | None,
    refresh_s: float,
) -> Starlette:
    """The Starlette app (see :func:`aioworker.dashboard.create_dashboard`)."""
    if refresh_s <= 0:
        raise ConfigError("refresh_s must be positive")
    views = Views(worker, show_args=show_args, cache_s=min(refresh_s / 2, 1.0))
    admin = Admin(worker)
    static = _load_static()
    version = hashlib.sha256(b"".join(static.values())).hexdigest()[:12]
    config = {"read_only": read_only, "show_args": show_args, "refresh_s": refresh_s}

    async def guard(request: Request) -> None:
        """Run the auth hook; its HTTPException goes out as it is."""
        if auth is None:
            return
        allowed = auth(request)
        if inspect.isawaitable(allowed):
            allowed = await allowed
        if not allowed:
            raise ApiError(403, "forbidden")

    def page(name: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            await guard(request)
            return HTMLResponse(
                _shell(name, request.scope.get("root_path", ""), version, config),
                headers={**SECURITY_HEADERS, "Cache-Control": "no-store"},
            )

        return _errors(endpoint)

    async def static_file(request: Request) -> Response:
        await guard(request)
        name = request.path_params["name"]
        if name not in static:
            raise ApiError(404, "no such file")
        return Response(
            static[name],
            media_type=STATIC[name],
            headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    def api(fn: Callable[[Request], Awaitable[Any]], *, action: bool = False) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            await guard(request)
            if action:
                if read_only:
                    raise ApiError(403, "the dashboard is read-only")
                ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype != "application/json":
                    raise ApiError(415, "send actions as application/json")
            data = await fn(request)
            if action:
                views.invalidate()
            return _json(data)

        return _errors(endpoint)

    # -- reads ---------------------------------------------------------------------

    async def get_config(request: Request) -> Any:
        return config

    async def get_overview(request: Request) -> Any:
        return await views.overview()

    async def get_queues(request: Request) -> Any:
        return await views.queues()

    async def get_jobs(request: Request) -> Any:
        q = request.query_params
        return await views.jobs(
            q.get("state", "running"),
            q.get("queue") or None,
            offset=_int(q.get("offset"), 0, "offset"),
            limit=_int(q.get("limit"), 50, "limit"),
        )

    async def get_job(request: Request) -> Any:
        p = request.path_params
        found = await views.job(p.get("queue"), p["job_id"])
        if found is None:
            raise ApiError(404, f"no job {p['job_id']!r}")
        return found

    async def get_workers(request: Request) -> Any:
        return await views.workers()

    async def get_schedules(request: Request) -> Any:
        return await views.schedules()

    async def get_batches(request: Request) -> Any:
        q = request.query_params
        return await views.batches(
            limit=_int(q.get("limit"), 50, "limit"), offset=_int(q.get("offset"), 0, "offset")
        )

    async def get_limiters(request: Request) -> Any:
        return await views.limiters()

    # -- actions -------------------------------------------------------------------

    async def pause(request: Request) -> Any:
        queue = request.path_params["queue"]
        changed = await admin.pause(queue)
        log.info("dashboard: queue %s paused (changed: %s)", queue, changed)
        return {"queue": queue, "paused": True, "changed": changed}

    async def resume(request: Request) -> Any:
        queue = request.path_params["queue"]
        changed = await admin.resume(queue)
        log.info("dashboard: queue %s resumed (changed: %s)", queue, changed)
        return {"queue": queue, "paused": False, "changed": changed}

    async def dead_retry(request: Request) -> Any:
        queue = request.path_params["queue"]
        ids, task = await _selection(request)
        n = await admin.retry_dead(queue, ids, task=task)
        log.info("dashboard: %d dead job(s) of queue %s put back to run", n, queue)
        return {"queue": queue, "retried": n}

    async def dead_delete(request: Request) -> Any:
        queue = request.path_params["queue"]
        ids, task = await _selection(request)
        n = await admin.purge_dead(queue, ids, task=task)
        log.info("dashboard: %d dead job(s) of queue %s deleted", n, queue)
        return {"queue": queue, "deleted": n}

    async def cancel(request: Request) -> Any:
        p = request.path_params
        result = await admin.cancel(p["queue"], p["job_id"])
        log.info(
            "dashboard: cancel job %s of queue %s: %s", result.id, result.queue, result.outcome
        )
        return result

    def schedule_action(op: str) -> Callable[[Request], Awaitable[Any]]:
        async def act(request: Request) -> Any:
            name = request.path_params["name"]
            scheduler: Any = getattr(worker, "scheduler", None)
            if scheduler is None:
                raise ApiError(404, "this app has no periodic schedules")
            log.info("dashboard: schedule %s: %s", name, op)
            if op == "run":
                handle = await scheduler.run_now(name)
                return {"job_id": handle.id}
            info = await (scheduler.pause(name) if op == "pause" else scheduler.resume(name))
            return {**to_jsonable(info), "paused": info.paused}

        return act

    async def batch_cancel(request: Request) -> Any:
        batch_id = request.path_params["batch_id"]
        await worker.client.broker.connect()
        cancelled = await worker.batches.get(batch_id).cancel()
        log.info("dashboard: batch %s cancelled (changed: %s)", batch_id, cancelled)
        return {"id": batch_id, "cancelled": cancelled}

    routes = [
        Route("/", page("queues"), methods=["GET"]),
        *(Route(f"/{name}", page(name), methods=["GET"]) for name in PAGES),
        Route("/static/{name}", _errors(static_file), methods=["GET"]),
        Route("/api/config", api(get_config), methods=["GET"]),
        Route("/api/overview", api(get_overview), methods=["GET"]),
        Route("/api/queues", api(get_queues), methods=["GET"]),
        Route("/api/jobs", api(get_jobs), methods=["GET"]),
        Route("/api/jobs/{queue}/{job_id:path}/cancel", api(cancel, action=True), methods=["POST"]),
        Route("/api/jobs/{queue}/{job_id:path}", api(get_job), methods=["GET"]),
        Route("/api/find/{job_id:path}", api(get_job), methods=["GET"]),
        Route("/api/workers", api(get_workers), methods=["GET"]),
        Route("/api/schedules", api(get_schedules), methods=["GET"]),
        Route("/api/batches", api(get_batches), methods=["GET"]),
        Route("/api/limiters", api(get_limiters), methods=["GET"]),
        Route("/api/queues/{queue}/pause", api(pause, action=True), methods=["POST"]),
        Route("/api/queues/{queue}/resume", api(resume, action=True), methods=["POST"]),
        Route("/api/dead/{queue}/retry", api(dead_retry, action=True), methods=["POST"]),
        Route("/api/dead/{queue}/delete", api(dead_delete, action=True), methods=["POST"]),
        *(
            Route(
                f"/api/schedules/{{name}}/{op}",
                api(schedule_action(op), action=True),
                methods=["POST"],
            )
            for op in ("pause", "resume", "run")
        ),
        Route("/api/batches/{batch_id}/cancel", api(batch_cancel, action=True), methods=["POST"]),
    ]
    return Starlette(routes=routes)


def _errors(endpoint: Endpoint) -> Endpoint:
    """Map errors to JSON answers (an auth hook's HTTPException passes through)."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiError as exc:
            return _json({"error": str(exc)}, exc.status)
        except (UnknownScheduleError, BatchNotFound) as exc:
            return _json({"error": str(exc)}, 404)
        except BrokerUnavailable as exc:
            return _json({"error": str(exc)}, 503)
        except TRANSIENT_ERRORS as exc:
            return _json({"error": f"Redis unavailable: {exc}"}, 503)
        except ValueError as exc:  # bad names, states, limits, bodies (ConfigError too)
            return _json({"error": str(exc)}, 400)

    return wrapped


def _int(raw: str | None, default: int, name: str) -> int:
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None


async def _selection(request: Request) -> tuple[list[str] | None, str | None]:
    """The jobs a retry or delete names: ``(ids, None)``, ``(None, task)`` or, for
    ``{"all": true}``, ``(None, None)``.

    :raises ValueError: unless the body is exactly one of the three forms.
    """
    try:
        body = orjson.loads(await request.body() or b"{}")
    except orjson.JSONDecodeError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    forms = [k for k in ("ids", "task", "all") if k in body]
    if len(forms) != 1:
        raise ValueError('name the jobs with exactly one of "ids", "task" or "all": true')
    if "ids" in body:
        ids = body["ids"]
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise ValueError('"ids" must be a list of job ids')
        if len(ids) > MAX_IDS:
            raise ValueError(f"at most {MAX_IDS} ids per request")
        return ids, None
    if "task" in body:
        if not isinstance(body["task"], str) or not body["task"]:
            raise ValueError('"task" must be a task name')
        return None, body["task"]
    if body["all"] is not True:
        raise ValueError('"all" must be true')
    return None, None


def _shell(page: str, root_path: str, version: str, config: dict[str, Any]) -> str:
    """The HTML every page starts from; the script fills ``<main>``."""
    base = html.escape(root_path.rstrip("/") + "/", quote=True)
    nav = "".join(
        f'<a href="{name if name != "queues" else "./"}" data-nav="{name}"'
        f"{' aria-current=page' if name == page else ''}>{title}</a>"
        for name, title in PAGES.items()
        if title
    )
    flags = (
        f'data-page="{page}" data-read-only="{int(config["read_only"])}" '
        f'data-show-args="{int(config["show_args"])}" '
        f'data-refresh-ms="{int(config["refresh_s"] * 1000)}"'
    )
    badge = '<span class="badge">read-only</span>' if config["read_only"] else ""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{PAGES.get(page) or "Job"} · aioworker</title>
<base href="{base}">
<link rel="icon" href="static/favicon.svg?v={version}" type="image/svg+xml">
<link rel="stylesheet" href="static/dashboard.css?v={version}">
</head>
<body {flags}>
<header>
<a class="brand" href="./"><img src="static/favicon.svg?v={version}" alt="">aioworker</a>
<nav>{nav}</nav>
<form id="find" role="search"><input name="id" placeholder="Find a job by id"
 aria-label="Find a job by id" autocomplete="off"></form>
{badge}<span id="status" class="status" aria-live="polite"></span>
</header>
<main id="main"><noscript>This dashboard needs JavaScript.</noscript></main>
<script src="static/dashboard.js?v={version}" defer></script>
</body>
</html>
"""
