"""Benchmark of aioworker's limiters beside Dramatiq's Redis rate limiters.

``python -m bench.limits_bench`` (``--quick`` for a short run) starts its own
``redis-server`` on a free port and measures, in one run:

1. **acquire cost**: admitted acquires per second of each limiter, from one caller
   (one connection, each call waits for its reply) and from 50 concurrent callers;
   for the concurrency limiters a pair of acquire and release.  Limits are set so high
   that every call is admitted.
2. **accuracy**: four callers ask a window limiter (50 per second) and a fixed-window
   limiter (50 per second) as fast as they can for a few seconds; the most admissions
   in any sliding 1-second interval, and the total against the allowed amount.  Each
   library is timed on the clock its algorithm reads: Redis ``TIME`` for aioworker, the
   caller's ``time.time()`` for Dramatiq.
3. **rate-limited tasks**: an aioworker worker runs a backlog of jobs of a task limited
   by each limiter (200 per second, or 10 at once for jobs of 50 ms), and the jobs
   finished per second in steady state are compared with the configured rate.

Dramatiq runs in its own virtualenv (``bench/.venvs/dramatiq``, created on first use)
as a subprocess against the same Redis.  Figures go to ``bench/LIMITS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aioworker import GCRA, Bucket, Concurrent, JobContext, Points, Window, Worker
from aioworker.broker import Broker
from aioworker.limits import Limiter

BENCH_DIR = Path(__file__).resolve().parent
VENV = BENCH_DIR / ".venvs" / "dramatiq"
OUT = BENCH_DIR / "LIMITS.md"
CALLERS = 50
HUGE = 1_000_000_000

DRAMATIQ_SCRIPT = r"""
import json, sys, threading, time
from dramatiq.rate_limits import BucketRateLimiter, ConcurrentRateLimiter, WindowRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

url, seconds = sys.argv[1], float(sys.argv[2])
threads, acc_seconds = int(sys.argv[3]), float(sys.argv[4])
backend = RedisBackend(url=url)
HUGE = 1_000_000_000
out = {"ops": {}, "accuracy": {}}

def one(limiter):
    with limiter.acquire(raise_on_failure=False) as ok:
        return ok

kinds = {
    "concurrent": lambda k: ConcurrentRateLimiter(backend, k, limit=HUGE, ttl=60_000),
    "window": lambda k: WindowRateLimiter(backend, k, limit=HUGE, window=1),
    "bucket": lambda k: BucketRateLimiter(backend, k, limit=HUGE, bucket=1000),
}
for name, make in kinds.items():
    lim = make("ops-seq-" + name)
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        assert one(lim)
        n += 1
    seq = n / seconds
    lim = make("ops-thr-" + name)
    counts = [0] * threads
    end = time.perf_counter() + seconds
    def work(i):
        while time.perf_counter() < end:
            one(lim)
            counts[i] += 1
    ts = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in ts: t.start()
    for t in ts: t.join()
    out["ops"][name] = {"sequential": seq, "threads": sum(counts) / seconds}

accuracy = {
    "window": WindowRateLimiter(backend, "acc-window", limit=50, window=1),
    "bucket": BucketRateLimiter(backend, "acc-bucket", limit=50, bucket=1000),
}
for name, lim in accuracy.items():
    admitted, calls = [], [0]
    lock = threading.Lock()
    started = time.time()
    end = time.perf_counter() + acc_seconds
    def hammer():
        while time.perf_counter() < end:
            t = time.time()
            ok = one(lim)
            with lock:
                calls[0] += 1
                if ok:
                    admitted.append(int(t * 1e6))
    ts = [threading.Thread(target=hammer) for _ in range(4)]
    for t in ts: t.start()
    for t in ts: t.join()
    out["accuracy"][name] = {
        "admitted_us": sorted(admitted),
        "calls": calls[0],
        "span_us": [int(started * 1e6), int(time.time() * 1e6)],
    }
import dramatiq
out["version"] = dramatiq.__version__
print(json.dumps(out))
"""


# -- a private redis-server ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway ``redis-server``; stopped by its PID afterwards."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


# -- measurements ----------------------------------------------------------------------


async def rate(fn: Callable[[], Awaitable[Any]], seconds: float, callers: int) -> float:
    """Calls per second of ``fn`` made by ``callers`` coroutines for ``seconds``."""
    count = 0
    end = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal count
        while time.perf_counter() < end:
            await fn()
            count += 1

    await asyncio.gather(*(caller() for _ in range(callers)))
    return count / seconds


def ops_limiters(broker: Broker, tag: str) -> dict[str, Limiter]:
    p = "bench"
    return {
        "concurrent": Concurrent(f"{tag}-c", HUGE, on=broker, prefix=p),
        "window": Window(f"{tag}-w", HUGE, per=1, on=broker, prefix=p),
        "bucket": Bucket(f"{tag}-b", HUGE, per=1, on=broker, prefix=p),
        "gcra": GCRA(f"{tag}-g", HUGE, per=1, burst=HUGE, on=broker, prefix=p),
        "points": Points(f"{tag}-p", HUGE, per=1, on=broker, prefix=p),
    }


async def aioworker_ops(url: str, seconds: float, repeats: int) -> dict[str, dict[str, float]]:
    """Median over ``repeats`` runs of each limiter's admitted calls per second."""
    runs = [await aioworker_ops_once(url, seconds, n) for n in range(repeats)]
    return {
        name: {mode: statistics.median(r[name][mode] for r in runs) for mode in runs[0][name]}
        for name in runs[0]
    }


async def aioworker_ops_once(url: str, seconds: float, n: int) -> dict[str, dict[str, float]]:
    broker = Broker(url)
    await broker.connect()
    out: dict[str, dict[str, float]] = {}
    try:
        for mode, callers in (("sequential", 1), ("concurrent", CALLERS)):
            for name, lim in ops_limiters(broker, f"{mode}-{n}").items():
                if isinstance(lim, Concurrent):
                    c = lim

                    async def pair(c: Concurrent = c) -> None:
                        adm = await c.try_acquire()
                        assert adm
                        await c.release(adm)

                    fn: Callable[[], Awaitable[Any]] = pair
                else:

                    async def single(lim: Limiter = lim) -> None:
                        assert await lim.try_acquire()

                    fn = single
                out.setdefault(name, {})[mode] = await rate(fn, seconds, callers)
    finally:
        await broker.close()
    return out


async def hammer(lim: Limiter, end: float, admitted: list[int], calls: list[int]) -> None:
    """Ask as fast as possible until ``end``; note the Redis time of each admission."""
    while time.perf_counter() < end:
        adm = await lim.try_acquire()
        calls[0] += 1
        if adm:
            admitted.append(adm.redis_time_us)


async def aioworker_accuracy(url: str, seconds: float) -> dict[str, dict[str, Any]]:
    broker = Broker(url)
    await broker.connect()
    out: dict[str, dict[str, Any]] = {}
    try:
        limiters: dict[str, Limiter] = {
            "window": Window("acc-w", 50, per=1, on=broker, prefix="bench"),
            "bucket": Bucket("acc-b", 50, per=1, on=broker, prefix="bench"),
        }
        for name, lim in limiters.items():
            admitted: list[int] = []
            calls = [0]
            started = await broker.redis_time_ms() * 1000
            end = time.perf_counter() + seconds
            await asyncio.gather(*(hammer(lim, end, admitted, calls) for _ in range(4)))
            span = [started, await broker.redis_time_ms() * 1000]
            out[name] = {"admitted_us": sorted(admitted), "calls": calls[0], "span_us": span}
    finally:
        await broker.close()
    return out


def accuracy_figures(kind: str, data: dict[str, Any], seconds: float) -> dict[str, float]:
    """Most admissions in a sliding second, and admitted against what the definition allows
    over the run (a fixed window allows 50 in every second the run touched)."""
    times: list[int] = data["admitted_us"]
    first, last = data["span_us"]
    if kind == "bucket":
        allowed = 50 * (last // 1_000_000 - first // 1_000_000 + 1)
    else:
        allowed = 50 * (last - first) / 1_000_000
    most, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= 1_000_000:
            lo += 1
        most = max(most, hi - lo + 1)
    return {
        "max_in_1s": most,
        "admitted": len(times),
        "allowed": allowed,
        "calls_per_s": data["calls"] / seconds,
    }


async def task_throughput(url: str, seconds: float, repeats: int) -> dict[str, dict[str, float]]:
    """Median over ``repeats`` runs of the jobs finished per second behind each limiter."""
    runs = [await task_throughput_once(url, seconds, n) for n in range(repeats)]
    return {
        name: {
            "configured": runs[0][name]["configured"],
            "achieved": statistics.median(r[name]["achieved"] for r in runs),
        }
        for name in runs[0]
    }


async def task_throughput_once(url: str, seconds: float, rep: int) -> dict[str, dict[str, float]]:
    """Jobs finished per second by one worker for a task behind each limiter."""
    configs: dict[str, tuple[Limiter, float, float]] = {
        # name: (limiter, configured jobs/s, job duration s)
        "window 200/s": (Window(f"t-w{rep}", 200, per=1), 200, 0.0),
        "bucket 200/s": (Bucket(f"t-b{rep}", 200, per=1), 200, 0.0),
        "gcra 200/s": (GCRA(f"t-g{rep}", 200, per=1, burst=10), 200, 0.0),
        "points 200/s": (Points(f"t-p{rep}", 200, per=1), 200, 0.0),
        "concurrent 10 x 50 ms": (Concurrent(f"t-c{rep}", 10), 200, 0.05),
    }
    out: dict[str, dict[str, float]] = {}
    for n, (name, (limiter, configured, duration)) in enumerate(configs.items()):
        w = Worker(url, prefix=f"bench-task-{rep}-{n}", queues={"q": 50}, lease_timeout=10)
        finished: list[float] = []

        async def job(
            ctx: JobContext, duration: float = duration, finished: list[float] = finished
        ) -> None:
            if duration:
                await asyncio.sleep(duration)
            finished.append(time.perf_counter())

        task = w.task(name="limited", queue="q", rate_limit=limiter)(job)
        backlog = int(configured * (seconds + 3))
        await w.enqueue_many([task.call() for _ in range(backlog)])
        run = asyncio.create_task(w.run(handle_signals=False))
        await asyncio.sleep(seconds + 1.0)
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
        await w.close()
        # steady state: from one second after the first job to the end of the window
        start = finished[0] + 1.0 if finished else 0.0
        steady = [t for t in finished if start <= t < start + seconds - 1.0]
        achieved = len(steady) / (seconds - 1.0)
        out[name] = {"configured": configured, "achieved": achieved}
    return out


# -- dramatiq ----------------------------------------------------------------------------


def dramatiq_python() -> tuple[Path | None, str]:
    python = VENV / "bin" / "python"
    check = [str(python), "-c", "import dramatiq.rate_limits.backends.redis"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python, ""
    try:
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "dramatiq[redis]"],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"could not install dramatiq: {exc}"
    return python, ""


def run_dramatiq(url: str, seconds: float, acc_seconds: float) -> dict[str, Any] | str:
    python, error = dramatiq_python()
    if python is None:
        return error
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(DRAMATIQ_SCRIPT)
        script = fh.name
    try:
        result = subprocess.run(
            [str(python), script, url, str(seconds), "8", str(acc_seconds)],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        os.unlink(script)
    if result.returncode != 0:
        return f"dramatiq run failed: {result.stderr.strip().splitlines()[-1:]}"
    data: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return data


# -- report ----------------------------------------------------------------------------


def fmt(x: float) -> str:
    return f"{x:,.0f}"


def render(
    ops: dict[str, dict[str, float]],
    accuracy: dict[str, dict[str, float]],
    tasks: dict[str, dict[str, float]],
    dramatiq: dict[str, Any] | str,
    meta: dict[str, str],
    acc_seconds: float,
) -> str:
    lines = [
        "# Limiters: aioworker beside Dramatiq",
        "",
        "Written by `python -m bench.limits_bench`; every figure comes from one run on one",
        "machine against one private `redis-server`.",
        "",
        *(f"- {k}: {v}" for k, v in meta.items()),
        "",
        "## Cost of one acquire (admitted calls per second)",
        "",
        "One caller waits for each reply before the next call (one connection); the",
        "concurrent column has 50 coroutines (aioworker, one asyncio process) or 8 threads",
        "(Dramatiq, synchronous client).  `concurrent` limiters: an acquire and its release.",
        "",
        "| limiter | aioworker, 1 caller | aioworker, 50 callers | Dramatiq, 1 caller "
        "| Dramatiq, 8 threads |",
        "|---|---:|---:|---:|---:|",
    ]
    d_ops: dict[str, dict[str, float]] = {} if isinstance(dramatiq, str) else dramatiq["ops"]
    for name, row in ops.items():
        d = d_ops.get(name)
        d_seq = fmt(d["sequential"]) if d else "n/a"
        d_thr = fmt(d["threads"]) if d else "n/a"
        lines.append(
            f"| {name} | {fmt(row['sequential'])} | {fmt(row['concurrent'])} | {d_seq} | {d_thr} |"
        )
    lines += [
        "",
        f"## Accuracy: 4 callers as fast as they can for {acc_seconds:.0f} s, limit 50/s",
        "",
        "`max in any 1 s` is the most admissions in any sliding 1-second interval (a",
        "correct sliding window never exceeds 50; a fixed window may admit up to 100 across",
        "a boundary by design).  `allowed` is what the limiter's definition allows over the",
        "run: 50 per second of its length for a sliding window, 50 per fixed second the run",
        "touched for a fixed window.",
        "",
        "| limiter | library | max in any 1 s | admitted / allowed | calls/s |",
        "|---|---|---:|---:|---:|",
    ]
    d_acc: dict[str, dict[str, float]] = {}
    if not isinstance(dramatiq, str):
        d_acc = {k: accuracy_figures(k, v, acc_seconds) for k, v in dramatiq["accuracy"].items()}
    for name, row in accuracy.items():
        for lib, r in (("aioworker", row), ("Dramatiq", d_acc.get(name))):
            if r is None:
                continue
            lines.append(
                f"| {name} | {lib} | {r['max_in_1s']:.0f} | "
                f"{r['admitted']:.0f} / {r['allowed']:.0f} | {fmt(r['calls_per_s'])} |"
            )
    lines += [
        "",
        "## Rate-limited tasks: jobs finished per second versus the configured rate",
        "",
        "One aioworker worker process (queue concurrency 50), a backlog larger than the run;",
        "jobs over the limit are deferred to when the limiter expects a slot; the steady",
        "state is measured from one second after the first job.",
        "",
        "| task limiter | configured jobs/s | achieved jobs/s | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, row in tasks.items():
        lines.append(
            f"| {name} | {fmt(row['configured'])} | {row['achieved']:.1f} | "
            f"{row['achieved'] / row['configured']:.2f} |"
        )
    if isinstance(dramatiq, str):
        lines += ["", f"Dramatiq: {dramatiq}"]
    lines += [
        "",
        "## Reading the figures",
        "",
        "- On 2 cores the callers, Redis and any other work on the machine share the CPU:",
        "  figures of separate runs differ by tens of percent (see the load average above),",
        "  so compare the columns of one run rather than figures across runs.",
        "- GCRA and Points have no Dramatiq counterpart.  Dramatiq's limiters are called from",
        "  worker threads with a synchronous client; an aioworker job over its limit is",
        "  deferred and holds no worker slot while it waits.",
        "- The task figures include everything a job goes through: fetch, the limiter's",
        "  script, the deferral of refused jobs and their return when due (or, for the",
        "  concurrency cap, when a slot is freed).",
    ]
    lines.append("")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short runs (about 40 s)")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the report")
    return parser.parse_args(argv)


def run(coro: Awaitable[Any]) -> Any:
    """Run on uvloop, as workers do."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on POSIX
        return asyncio.run(coro)  # type: ignore[arg-type]
    return uvloop.run(coro)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.getLogger("aioworker").setLevel(logging.ERROR)  # interrupted jobs at each stop
    repeats = 1 if args.quick else 3
    seconds = 1.0 if args.quick else 2.0
    acc_seconds = 3.0 if args.quick else 5.0
    task_seconds = 3.0 if args.quick else 5.0
    with redis_server() as url:
        print("aioworker acquire cost ...", flush=True)
        load = os.getloadavg()[0]
        ops = run(aioworker_ops(url, seconds, repeats))
        print("aioworker accuracy ...", flush=True)
        raw = run(aioworker_accuracy(url, acc_seconds))
        accuracy = {k: accuracy_figures(k, v, acc_seconds) for k, v in raw.items()}
        print("aioworker rate-limited tasks ...", flush=True)
        tasks = run(task_throughput(url, task_seconds, repeats))
        print("dramatiq ...", flush=True)
        dramatiq = run_dramatiq(url, seconds, acc_seconds)
        server = subprocess.run(["redis-server", "--version"], capture_output=True, text=True)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "python": platform.python_version(),
        "redis-server": server.stdout.split()[2] if server.stdout else "?",
        "dramatiq": dramatiq if isinstance(dramatiq, str) else dramatiq["version"],
        "load average at start (1 min)": f"{load:.2f}",
        "repeats": f"{repeats} (aioworker acquire cost and task throughput: median)",
    }
    report = render(ops, accuracy, tasks, dramatiq, meta, acc_seconds)
    args.out.write_text(report)
    print(report)


if __name__ == "__main__":
    main()
