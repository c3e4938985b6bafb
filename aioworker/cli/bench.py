"""``aioworker bench app:worker TASK``: benchmark one of the app's own tasks."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ..benchmark import BenchReport, run_bench
from ..errors import ConfigError
from .common import add_app_arguments, common, load_worker, run_async

__all__ = ("register",)


def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser(
        "bench", help="benchmark a task of the app", parents=[common()]
    )
    add_app_arguments(p)
    p.add_argument("task", help="task name as registered (e.g. app.send_email)")
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=1000)
    p.add_argument("--args", default="[]", help="JSON list of positional arguments")
    p.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments")
    p.add_argument(
        "--remote", action="store_true", help="let running workers do the jobs (measure only)"
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_bench)


def _bench(args: argparse.Namespace) -> int:
    async def go() -> int:
        try:
            call_args = orjson.loads(args.args)
            call_kwargs = orjson.loads(args.kwargs)
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"--args/--kwargs must be JSON: {exc}") from None
        if not isinstance(call_args, list) or not isinstance(call_kwargs, dict):
            raise ConfigError("--args must be a JSON list and --kwargs a JSON object")
        if args.jobs < 1 or args.concurrency < 1:
            raise ConfigError("--jobs and --concurrency must be at least 1")
        worker = load_worker(args)
        show = sys.stderr.isatty() and not args.json
        try:
            report = await run_bench(
                worker,
                args.task,
                jobs=args.jobs,
                concurrency=args.concurrency,
                args=call_args,
                kwargs=call_kwargs,
                in_process=not args.remote,
                progress=_progress_bar if show else None,
            )
        finally:
            await worker.close()
        if show:
            sys.stderr.write("\n")
        sys.stdout.write(
            orjson.dumps(report.as_dict()).decode() + "\n" if args.json else _table(report)
        )
        return 0

    return run_async(go)


def _progress_bar(done: int, total: int) -> None:
    width = 40
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
    sys.stderr.flush()


def _table(r: BenchReport) -> str:
    def pct(d: dict[str, float]) -> str:
        return " ".join(f"{k} {v:.2f}" for k, v in d.items()) or "-"

    rows = [
        ("task", r.task),
        ("jobs / concurrency", f"{r.jobs} / {r.concurrency} ({r.mode})"),
        ("enqueue", f"{r.enqueue_per_s:,.0f} jobs/s ({r.enqueue_s:.2f} s, bulk)"),
        ("run", f"{r.jobs_per_s:,.0f} jobs/s ({r.run_s:.2f} s)"),
        (
            "latency ms" + (" (enqueue->start)" if r.mode == "in-process" else " (enqueue->end)"),
            pct(r.latency_ms),
        ),
        ("run time ms", pct(r.run_time_ms)),
        ("peak RSS", f"{r.peak_rss_mb:.0f} MB"),
        (
            "Redis per job",
            f"{r.redis_commands_per_job} commands, {r.redis_calls_per_job} round trips",
        ),
        ("outcomes", " ".join(f"{k}={v}" for k, v in r.outcomes.items() if v) or "-"),
    ]
    width = max(len(k) for k, _ in rows)
    return "".join(f"{k.ljust(width)}  {v}\n" for k, v in rows)
