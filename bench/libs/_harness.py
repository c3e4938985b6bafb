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

With ``--workers N`` (N > 1) the producer starts N such children and says
``go`` to all of them. No child knows when the whole job count is done, so
each one reports its running count (and the ``time.perf_counter()`` of its
latest finished job) over its tagged stdout every ``PROGRESS_EVERY_S`` while
the count moves. The producer stops the clock when the sum reaches ``--jobs``:
the run spans from the earliest child's start to the latest of those
finishing times (``perf_counter`` is the system-wide monotonic clock on
Linux, so the children's readings compare). Then it says ``stop`` to every
child, each stops its worker and reports its own CPU time and peak RSS; the
producer sums the CPU and keeps the largest RSS. Counting adds no Redis
command: it rides on the pipe the children already have.

The driver only uses the standard library and uvloop, so it runs unchanged in
each library's own virtualenv. Protocol lines between the two processes carry
a prefix so that anything a library prints to stdout is ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import resource
import socket
import subprocess
import sys
import threading
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
# with several worker processes: how often each reports its running count
PROGRESS_EVERY_S = 0.02


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
    workers: int = 1


class Completions:
    """Counts job bodies that ran to the end in the worker process.

    :param target: the count that stops the clock in this process, or ``None``
        when the producer decides (several worker processes): then
        :meth:`finish` sets the event when it says ``stop``.
    """

    def __init__(self, target: int | None) -> None:
        self.target = target
        self.count = 0
        self.last_at: float | None = None
        self.done_at: float | None = None
        self.first_start: float | None = None
        self.pickup_s: list[float] = []
        self.event = asyncio.Event()

    def hit(self) -> None:
        """Record one finished job; the last one stops the clock."""
        self.count += 1
        self.last_at = time.perf_counter()
        if self.count == self.target:
            self.done_at = self.last_at
            self.event.set()

    def finish(self) -> None:
        """The producer counted every job over all worker processes: stop."""
        self.done_at = self.last_at
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


def _request(address: tuple[str, int], command: str) -> bytes:
    """Send one inline command and return its bulk-string reply.

    :raises RuntimeError: when the server answers with an error.
    """
    with socket.create_connection(address) as sock:
        sock.sendall(command.encode() + b"\r\n")
        buf = b""
        while b"\r\n" not in buf:
            buf += sock.recv(65536)
        header, _, rest = buf.partition(b"\r\n")
        if header.startswith(b"-"):
            raise RuntimeError(header[1:].decode(errors="replace"))
        size = int(header[1:])
        while len(rest) < size:
            rest += sock.recv(65536)
    return rest[:size]


_nodes_cache: dict[str, list[tuple[str, int]]] = {}


def redis_nodes(redis_url: str) -> list[tuple[str, int]]:
    """The URL's server, or every master of the cluster it belongs to.

    Looked up once per URL, so the lookup is not among the commands counted
    between two :func:`command_stats` calls.
    """
    if redis_url not in _nodes_cache:
        url = urlsplit(redis_url)
        address = (url.hostname or "127.0.0.1", url.port or 6379)
        try:
            table = _request(address, "CLUSTER NODES").decode()
        except RuntimeError:  # cluster support disabled: a single node
            _nodes_cache[redis_url] = [address]
        else:
            masters = []
            for line in table.splitlines():
                fields = line.split()
                if len(fields) > 2 and "master" in fields[2].split(","):
                    host, _, port = fields[1].split("@")[0].rpartition(":")
                    masters.append((host or address[0], int(port)))
            _nodes_cache[redis_url] = sorted(masters)
    return _nodes_cache[redis_url]


def is_cluster(redis_url: str) -> bool:
    """Whether the URL names a node of a Redis Cluster (for libraries that must be told)."""
    url = urlsplit(redis_url)
    address = (url.hostname or "127.0.0.1", url.port or 6379)
    return any(line == "cluster_enabled:1" for line in _info(address, "cluster"))


def _info(address: tuple[str, int], section: str) -> list[str]:
    return _request(address, f"INFO {section}").decode().splitlines()


def command_stats(redis_url: str) -> dict[str, int]:
    """Calls per command from ``INFO commandstats``, summed over a cluster's masters.

    The driver runs in every library's virtualenv, so it speaks RESP itself
    over a plain socket.
    """
    stats: dict[str, int] = {}
    for address in redis_nodes(redis_url):
        for line in _info(address, "commandstats"):
            if line.startswith("cmdstat_"):
                name, _, fields = line[len("cmdstat_") :].partition(":")
                calls = dict(f.split("=", 1) for f in fields.split(","))["calls"]
                stats[name] = stats.get(name, 0) + int(calls)
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
    parser.add_argument("--workers", type=int, default=1, help="worker processes")
    parser.add_argument("--role", choices=("producer", "worker"), default="producer")
    ns = parser.parse_args(argv)
    if ns.workers < 1:
        parser.error("--workers must be at least 1")
    sleep_s = INFLIGHT_SLEEP_S if ns.scenario == "inflight" else SLEEP_S
    opts = Options(
        ns.scenario,
        ns.jobs,
        ns.concurrency,
        ns.redis_url,
        ns.timeout,
        ns.variant,
        sleep_s,
        ns.workers,
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


async def _report_progress(completions: Completions) -> None:
    """Tell the producer this process's running count while it moves."""
    shown = -1
    while True:
        if completions.count != shown:
            shown = completions.count
            _say({"count": shown, "last_at": completions.last_at})
        await asyncio.sleep(PROGRESS_EVERY_S)


def _listen_for_stop(completions: Completions) -> None:
    """Finish when the producer says ``stop`` (or goes away), from a reader thread."""
    loop = asyncio.get_running_loop()

    def read() -> None:
        sys.stdin.readline()  # "stop", or end of file
        loop.call_soon_threadsafe(completions.finish)

    threading.Thread(target=read, daemon=True).start()


async def _work(lib: Library, opts: Options) -> dict[str, Any]:
    global _completions
    fleet = opts.workers > 1
    completions = Completions(None if fleet else opts.jobs)
    _completions = completions
    cpu_before = _cpu_s()
    started = time.perf_counter()
    task = asyncio.create_task(lib.work(completions))
    waiter = asyncio.create_task(completions.event.wait())
    reporter = asyncio.create_task(_report_progress(completions)) if fleet else None
    if fleet:
        _listen_for_stop(completions)
    try:
        deadline = started + opts.timeout_s
        pending = {task, waiter}
        while not completions.event.is_set():
            left = deadline - time.perf_counter()
            if left <= 0:
                break
            _, pending = await asyncio.wait(pending, timeout=left, return_when="FIRST_COMPLETED")
            if task.done() and not completions.event.is_set():
                task.result()  # the worker stopped early: raise its error
                if not fleet:
                    ran = f"{completions.count}/{opts.jobs}"
                    raise RuntimeError(f"worker returned after {ran} jobs")
                # a burst worker that found the queue empty while the others
                # still run jobs: wait for the producer's stop
                pending.discard(task)
        if not completions.event.is_set():
            whose = f"this worker ran {completions.count}" if fleet else f"only {completions.count}"
            raise TimeoutError(f"{whose}/{opts.jobs} jobs after {opts.timeout_s:.0f} s")
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
        if reporter is not None:
            reporter.cancel()
    figures: dict[str, Any] = {
        "jobs_done": completions.count,
        "worker_cpu_s": round(cpu_s, 3),
        "stop_s": stop_s,
    }
    if fleet:
        # the producer works out the span from every process's readings
        figures.update(
            started_at=started, last_at=completions.last_at, first_start=completions.first_start
        )
        if completions.pickup_s:
            figures["pickup_s"] = completions.pickup_s
        return figures
    assert completions.done_at is not None
    elapsed = completions.done_at - started
    figures["work_s"] = round(elapsed, 4)
    figures["jobs_per_s"] = round(opts.jobs / elapsed, 1)
    if completions.first_start is not None:
        # first job start to last job end
        figures["span_s"] = round(completions.done_at - completions.first_start, 4)
    figures.update(_pickup_figures(completions.pickup_s))
    return figures


def _pickup_figures(pickup_s: list[float]) -> dict[str, float]:
    if not pickup_s:
        return {}
    return {
        "pickup_p50_ms": round(_percentile(pickup_s, 50) * 1000, 3),
        "pickup_p99_ms": round(_percentile(pickup_s, 99) * 1000, 3),
        "pickup_max_ms": round(max(pickup_s) * 1000, 3),
    }


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


def _tell(procs: list[subprocess.Popen[str]], word: str) -> None:
    for proc in procs:
        assert proc.stdin is not None
        try:
            proc.stdin.write(word + "\n")
            proc.stdin.flush()
        except (BrokenPipeError, ValueError):
            pass  # that child already exited; its report says why


def _follow(procs: list[subprocess.Popen[str]]) -> queue.Queue[tuple[int, dict[str, Any] | None]]:
    """Read every child's tagged lines on threads; ``None`` marks a closed stdout."""
    lines: queue.Queue[tuple[int, dict[str, Any] | None]] = queue.Queue()

    def read(i: int, proc: subprocess.Popen[str]) -> None:
        while (payload := _read_tagged(proc)) is not None:
            lines.put((i, payload))
        lines.put((i, None))

    for i, proc in enumerate(procs):
        threading.Thread(target=read, args=(i, proc), daemon=True).start()
    return lines


def _collect(procs: list[subprocess.Popen[str]], opts: Options) -> dict[str, Any]:
    """Count completions over all worker processes, stop them, sum their figures."""
    lines = _follow(procs)
    counts = [0] * len(procs)
    last_at: list[float | None] = [None] * len(procs)
    finals: dict[int, dict[str, Any]] = {}
    done_at: float | None = None
    deadline = time.monotonic() + opts.timeout_s + STOP_TIMEOUT_S + 10
    while len(finals) < len(procs):
        try:
            i, payload = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"{sum(counts)}/{opts.jobs} jobs counted; {counts}") from None
        if payload is None:
            if i not in finals:
                raise RuntimeError(f"worker {i + 1} exited without figures")
            continue
        if "error" in payload:
            raise RuntimeError(f"worker {i + 1} of {len(procs)} failed:\n" + payload["error"])
        if "count" in payload:
            counts[i], last_at[i] = payload["count"], payload["last_at"]
            if done_at is None and sum(counts) >= opts.jobs:
                done_at = max(t for t in last_at if t is not None)
                _tell(procs, "stop")
        else:
            finals[i] = payload
            counts[i], last_at[i] = payload["jobs_done"], payload["last_at"]
    if done_at is None:
        raise RuntimeError(f"the workers stopped after {sum(counts)}/{opts.jobs} jobs: {counts}")
    reports = [finals[i] for i in range(len(procs))]
    started = min(r["started_at"] for r in reports)
    elapsed = done_at - started
    stops = [r["stop_s"] for r in reports]
    figures: dict[str, Any] = {
        "workers": len(procs),
        "jobs_done": sum(r["jobs_done"] for r in reports),
        "jobs_each": [r["jobs_done"] for r in reports],
        "work_s": round(elapsed, 4),
        "jobs_per_s": round(opts.jobs / elapsed, 1),
        "worker_cpu_s": round(sum(r["worker_cpu_s"] for r in reports), 3),
        "worker_cpu_s_each": [r["worker_cpu_s"] for r in reports],
        "stop_s": None if None in stops else max(stops),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in reports),
        "peak_rss_mb_each": [r["peak_rss_mb"] for r in reports],
        "rss_before_mb": max(r["rss_before_mb"] for r in reports),
    }
    firsts = [r["first_start"] for r in reports if r.get("first_start") is not None]
    if firsts:
        figures["span_s"] = round(done_at - min(firsts), 4)
    figures.update(_pickup_figures([x for r in reports for x in r.get("pickup_s", ())]))
    return figures


def _producer_role(
    build: Callable[[Options], Library], opts: Options, argv: list[str] | None
) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    workers = [
        subprocess.Popen(
            [sys.executable, sys.argv[0], *args, "--role", "worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(opts.workers)
    ]
    result: dict[str, Any] = {"scenario": opts.scenario, "jobs": opts.jobs}
    try:
        lib = build(opts)
        result.update(lib=lib.name, version=lib.version, settings=lib.settings, **lib.extra)
        for worker in workers:
            ready = _read_tagged(worker)
            if not ready or not ready.get("ready"):
                raise RuntimeError(f"worker did not start: {ready}")
        pickup = opts.scenario == "pickup"
        if pickup:
            # the worker starts first and waits idle for jobs sent one at a time
            _tell(workers, "go")
            time.sleep(PICKUP_SETTLE_S)
            stats_before = command_stats(opts.redis_url)
        with _runner() as runner:
            started = time.perf_counter()
            runner.run(lib.enqueue())
            enqueue_s = time.perf_counter() - started
        result["enqueue_s"] = round(enqueue_s, 4)
        result["enqueue_per_s"] = round(opts.jobs / enqueue_s, 1)
        if not pickup:
            # the worker phase only: from "go" until the workers reported
            stats_before = command_stats(opts.redis_url)
            _tell(workers, "go")
        # one worker stops the clock itself at the last job; several are counted here
        figures = _read_tagged(workers[0]) if len(workers) == 1 else _collect(workers, opts)
        stats_after = command_stats(opts.redis_url)
        result["commands"] = {
            name: n - stats_before.get(name, 0)
            for name, n in stats_after.items()
            if n != stats_before.get(name, 0)
        }
        # the INFO calls that took the second snapshot, one per node
        nodes = len(redis_nodes(opts.redis_url))
        result["commands"]["info"] = result["commands"].get("info", nodes) - nodes
        for worker in workers:
            worker.wait(timeout=STOP_TIMEOUT_S)
        if figures is None:
            raise RuntimeError(f"worker exited with status {workers[0].returncode} and no figures")
        if "error" in figures:
            raise RuntimeError("worker failed:\n" + figures["error"])
        result.update(figures)
    except Exception:
        result["error"] = _tail(traceback.format_exc())
        print(json.dumps(result), flush=True)
        return 1
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    print(json.dumps(result), flush=True)
    return 0
