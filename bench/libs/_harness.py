"""Shared driver for the per-library benchmark scripts.

Every ``bench/libs/<lib>_bench.py`` script describes its library with a
:class:`Library` and hands it to :func:`main`. The same driver then measures
every library in the same way:

1. The script (the *producer*) starts a copy of itself with ``--role worker``.
   That child imports the library, builds its worker objects and says
   ``ready``; it does not touch the queue yet.
2. The producer enqueues ``--jobs`` jobs with the library's fastest bulk path
   and times it (``enqueue_per_s``).
3. The producer says ``go``. The child starts the library's worker and counts
   finished job bodies in-process; the clock stops at the last one
   (``jobs_per_s``). The child then stops its worker and reports its own peak
   RSS (``ru_maxrss``), so the figure belongs to the process that did the work
   and not to the one that built 20,000 jobs in memory.
4. The producer prints one JSON line with the figures.

The driver only uses the standard library and uvloop, so it runs unchanged in
each library's own virtualenv. Protocol lines between the two processes carry
a prefix so that anything a library prints to stdout is ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvloop

TAG = "@@bench "
SLEEP_S = 0.05
# in-flight scenario: every job sleeps this long, all of them at once
INFLIGHT_SLEEP_S = 5.0
# pickup scenario: jobs enqueued one at a time at this rate into an idle worker
PICKUP_RATE_PER_S = 500.0
# pickup scenario: time the started worker gets to settle before the first job
PICKUP_SETTLE_S = 2.0
SCENARIOS = ("noop", "io", "pickup", "inflight")
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Options:
    """What one benchmark run asks for."""

    scenario: str
    jobs: int
    concurrency: int
    redis_url: str
    timeout_s: float
    variant: str = ""
    sleep_s: float = SLEEP_S


class Completions:
    """Counts job bodies that ran to the end in the worker process."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.count = 0
        self.done_at: float | None = None
        self.first_start: float | None = None
        self.pickup_s: list[float] = []
        self.event = asyncio.Event()

    def hit(self) -> None:
        """Record one finished job; the last one stops the clock."""
        self.count += 1
        if self.count == self.target:
            self.done_at = time.perf_counter()
            self.event.set()


_completions: Completions | None = None


def job_done() -> None:
    """Called at the end of every benchmark job body."""
    if _completions is not None:
        _completions.hit()


def job_started() -> None:
    """Called at the start of sleeping job bodies: the first one starts the span."""
    if _completions is not None and _completions.first_start is None:
        _completions.first_start = time.perf_counter()


def job_stamp(enqueued_at: float) -> None:
    """Body of a pickup job: ``enqueued_at`` is the producer's ``time.time()``."""
    if _completions is not None:
        _completions.pickup_s.append(time.time() - enqueued_at)
        _completions.hit()


async def paced(opts: Options, send: Callable[[float], Awaitable[Any]]) -> None:
    """Enqueue ``opts.jobs`` jobs one at a time at ``PICKUP_RATE_PER_S``.

    :param send: enqueues one pickup job carrying the ``time.time()`` it is given.
    """
    started = time.perf_counter()
    for i in range(opts.jobs):
        delay = started + i / PICKUP_RATE_PER_S - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        await send(time.time())


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def command_stats(redis_url: str) -> dict[str, int]:
    """Calls per command from ``INFO commandstats``, over a plain socket.

    The driver runs in every library's virtualenv, so it speaks RESP itself.
    """
    url = urlsplit(redis_url)
    with socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379)) as sock:
        sock.sendall(b"INFO commandstats\r\n")
        buf = b""
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        header, _, rest = buf.partition(b"\r\n")
        size = int(header[1:])
        while len(rest) < size:
            rest += sock.recv(65536)
    stats: dict[str, int] = {}
    for line in rest[:size].decode().splitlines():
        if line.startswith("cmdstat_"):
            name, _, fields = line[len("cmdstat_") :].partition(":")
            calls = dict(f.split("=", 1) for f in fields.split(","))["calls"]
            stats[name] = int(calls)
    return stats


@dataclass
class Library:
    """One library under test.

    :param name: short name shown in the results.
    :param version: installed version of the library.
    :param settings: worker and producer settings, shown in the results.
    :param enqueue: coroutine function that enqueues ``Options.jobs`` jobs.
    :param work: coroutine function that starts a worker, waits until
        ``Completions.event`` is set, then stops the worker and returns.
    """

    name: str
    version: str
    settings: dict[str, Any]
    enqueue: Callable[[], Awaitable[None]]
    work: Callable[[Completions], Awaitable[None]]
    extra: dict[str, Any] = field(default_factory=dict)


def _runner() -> asyncio.Runner:
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)


def _say(payload: dict[str, Any]) -> None:
    sys.stdout.write(TAG + json.dumps(payload) + "\n")
    sys.stdout.flush()


def _tail(text: str, lines: int = 12) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def _parse(argv: list[str] | None) -> tuple[Options, str]:
    parser = argparse.ArgumentParser(description="Run one benchmark scenario for one library.")
    parser.add_argument("--scenario", choices=SCENARIOS, required=True)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=1000)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for jobs")
    parser.add_argument("--variant", default="", help="library-specific variant, e.g. a broker")
    parser.add_argument("--role", choices=("producer", "worker"), default="producer")
    ns = parser.parse_args(argv)
    sleep_s = INFLIGHT_SLEEP_S if ns.scenario == "inflight" else SLEEP_S
    opts = Options(
        ns.scenario, ns.jobs, ns.concurrency, ns.redis_url, ns.timeout, ns.variant, sleep_s
    )
    return opts, ns.role


def main(build: Callable[[Options], Library], argv: list[str] | None = None) -> None:
    """Run the role given on the command line.

    :param build: makes the :class:`Library` for the given options; called
        in both processes.
    """
    opts, role = _parse(argv)
    if role == "worker":
        _worker_role(build, opts)
    else:
        sys.exit(_producer_role(build, opts, argv))


async def _work(lib: Library, opts: Options) -> dict[str, Any]:
    global _completions
    completions = Completions(opts.jobs)
    _completions = completions
    cpu_before = _cpu_s()
    started = time.perf_counter()
    task = asyncio.create_task(lib.work(completions))
    waiter = asyncio.create_task(completions.event.wait())
    try:
        await asyncio.wait({task, waiter}, timeout=opts.timeout_s, return_when="FIRST_COMPLETED")
        if task.done() and not completions.event.is_set():
            task.result()  # the worker stopped early: raise its error
            raise RuntimeError(f"worker returned after {completions.count}/{opts.jobs} jobs")
        if not completions.event.is_set():
            raise TimeoutError(
                f"only {completions.count}/{opts.jobs} jobs done after {opts.timeout_s:.0f} s"
            )
        assert completions.done_at is not None
        elapsed = completions.done_at - started
        cpu_s = _cpu_s() - cpu_before
        # Waiting on the worker without cancelling it: a worker that does not
        # stop is reported, and the process exits without waiting for it.
        stop_started = time.perf_counter()
        await asyncio.wait({task}, timeout=STOP_TIMEOUT_S)
        stop_s = round(time.perf_counter() - stop_started, 4) if task.done() else None
        if task.done():
            task.result()
    finally:
        waiter.cancel()
    figures: dict[str, Any] = {
        "jobs_done": completions.count,
        "work_s": round(elapsed, 4),
        "jobs_per_s": round(opts.jobs / elapsed, 1),
        "worker_cpu_s": round(cpu_s, 3),
        "stop_s": stop_s,
    }
    if completions.first_start is not None:
        # first job start to last job end
        figures["span_s"] = round(completions.done_at - completions.first_start, 4)
    if completions.pickup_s:
        figures["pickup_p50_ms"] = round(_percentile(completions.pickup_s, 50) * 1000, 3)
        figures["pickup_p99_ms"] = round(_percentile(completions.pickup_s, 99) * 1000, 3)
        figures["pickup_max_ms"] = round(max(completions.pickup_s) * 1000, 3)
    return figures


def _worker_role(build: Callable[[Options], Library], opts: Options) -> None:
    try:
        lib = build(opts)
        baseline = _rss_now_mb()
        _say({"ready": True})
        if sys.stdin.readline().strip() != "go":
            return
        runner = _runner()
        figures = runner.run(_work(lib, opts))
        figures["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        figures["rss_before_mb"] = round(baseline, 1)
        _say(figures)
    except BaseException as exc:  # report anything, including a timeout, to the producer
        _say({"error": _tail(traceback.format_exc()) or repr(exc)})
        os._exit(1)
    # The figures are out; leftover tasks of a worker that did not stop must
    # not hold the process, so skip the loop's and the interpreter's teardown.
    os._exit(0)


def _read_tagged(proc: subprocess.Popen[str]) -> dict[str, Any] | None:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(TAG):
            return dict(json.loads(line[len(TAG) :]))
    return None


def _producer_role(
    build: Callable[[Options], Library], opts: Options, argv: list[str] | None
) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    worker = subprocess.Popen(
        [sys.executable, sys.argv[0], *args, "--role", "worker"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    result: dict[str, Any] = {"scenario": opts.scenario, "jobs": opts.jobs}
    try:
        lib = build(opts)
        result.update(lib=lib.name, version=lib.version, settings=lib.settings, **lib.extra)
        ready = _read_tagged(worker)
        if not ready or not ready.get("ready"):
            raise RuntimeError(f"worker did not start: {ready}")
        assert worker.stdin is not None
        pickup = opts.scenario == "pickup"
        if pickup:
            # the worker starts first and waits idle for jobs sent one at a time
            worker.stdin.write("go\n")
            worker.stdin.flush()
            time.sleep(PICKUP_SETTLE_S)
            stats_before = command_stats(opts.redis_url)
        with _runner() as runner:
            started = time.perf_counter()
            runner.run(lib.enqueue())
            enqueue_s = time.perf_counter() - started
        result["enqueue_s"] = round(enqueue_s, 4)
        result["enqueue_per_s"] = round(opts.jobs / enqueue_s, 1)
        if not pickup:
            # the worker phase only: from "go" until the worker reported
            stats_before = command_stats(opts.redis_url)
            worker.stdin.write("go\n")
            worker.stdin.flush()
        figures = _read_tagged(worker)
        stats_after = command_stats(opts.redis_url)
        result["commands"] = {
            name: n - stats_before.get(name, 0)
            for name, n in stats_after.items()
            if n != stats_before.get(name, 0)
        }
        # the INFO call that took the second snapshot
        result["commands"]["info"] = result["commands"].get("info", 1) - 1
        worker.wait(timeout=STOP_TIMEOUT_S)
        if figures is None:
            raise RuntimeError(f"worker exited with status {worker.returncode} and no figures")
        if "error" in figures:
            raise RuntimeError("worker failed:\n" + figures["error"])
        result.update(figures)
    except Exception:
        result["error"] = _tail(traceback.format_exc())
        print(json.dumps(result), flush=True)
        return 1
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    print(json.dumps(result), flush=True)
    return 0
