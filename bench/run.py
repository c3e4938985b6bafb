"""Side-by-side benchmark of aioworker and its peers: ``python -m bench.run``.

Every library runs the same scenarios through the same driver
(``bench/libs/_harness.py``), one fresh process per run, in its own virtualenv
(the peers pin conflicting redis clients; aioworker is installed with its
runtime dependencies only, so extras in the project's venv do not count
against its memory):

* ``noop``: enqueue N no-op jobs with the library's fastest bulk path
  (``enqueue_per_s``), then start one worker and time until all N ran
  (``jobs_per_s``).
* ``io``: the same with N jobs of ``await asyncio.sleep(0.05)`` at a
  concurrency of 1,000; the worker process's peak RSS is reported as well.
* ``pickup``: jobs sent one at a time at 500/s into an idle worker; p50 and
  p99 of job start minus enqueue, both from ``time.time()``.
* ``inflight``: 10,000 jobs sleeping 5 s, all in flight in one worker; peak
  RSS and the time from the first start to the last end.
* ``scaling``: 1, 2 and 4 worker processes, and aioworker on a three-master
  Redis Cluster too (``bench/scaling.py``).

For every run the driver records ``INFO commandstats`` around the worker
phase (Redis commands and round trips per job), and ``bench/ceiling.py``
measures what one Python process pushes through redis-py on the same server.

Completion is counted the same way for every library: each job body bumps an
in-process counter in the worker process, and the clock stops at the Nth.

The benchmark starts its own ``redis-server`` on a free port, flushes it
between runs, and stops it by PID at the end. Libraries are interleaved within
each repeat (their order rotates), and each figure is the median over the
repeats with its min-max range. Results go to ``bench/RESULTS.md`` (and the
raw runs to ``bench/RESULTS.json``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench import peers, scaling, scaling_report, targets
from bench.cluster import server_args, wait_until_up
from bench.common import (
    BENCH_DIR,
    DISTURBED_CORES,
    LIBS,
    QUIET_CORES,
    REPO_ROOT,
    SUBJECT,
    Lib,
    cell,
    children_cpu_s,
    machine_cpu_s,
    num,
    redis_cpu_s,
    reset,
    run_one,
    tail,
)

SCENARIOS = ("noop", "io", "pickup", "inflight", "scaling")
THROUGHPUT = ("noop", "io")
METRICS = (
    # key, label, whether a higher value is better
    ("enqueue_per_s", "enqueue jobs/s", True),
    ("jobs_per_s", "jobs/s", True),
    ("peak_rss_mb", "worker peak RSS MB", False),
    # CPU per job barely moves when other work shares the machine, unlike jobs/s
    ("worker_cpu_us_per_job", "worker CPU us/job", False),
    ("redis_cpu_us_per_job", "Redis CPU us/job", False),
    ("commands_per_job", "Redis commands/job", False),
    ("round_trips_per_job", "round trips/job", False),
)
SCENARIO_METRICS = {
    "noop": METRICS,
    "io": METRICS,
    "pickup": (
        ("pickup_p50_ms", "pickup p50 ms", False),
        ("pickup_p99_ms", "pickup p99 ms", False),
        ("pickup_max_ms", "pickup max ms", False),
    ),
    "inflight": (
        ("peak_rss_mb", "worker peak RSS MB", False),
        ("span_s", "first start to last end s", False),
        ("enqueue_per_s", "enqueue jobs/s", True),
    ),
}
ALL_METRICS = tuple({m[0]: m for ms in SCENARIO_METRICS.values() for m in ms}.values())

# Round trips per job: the commands a library's clients send themselves, as
# opposed to those its Lua scripts or Redis functions run (INFO commandstats
# counts both). None: the library runs no scripts in the worker, so every
# command is one it sent (pipelined commands count one each, an upper bound).
CLIENT_COMMANDS: dict[str, frozenset[str] | None] = {
    # its Python code sends only these (broker.py); a pipelined queue-size check
    # (LLEN + ZCARDs) counts once, through its LLEN
    "aioworker": frozenset(
        {"evalsha", "eval", "blpop", "blmove", "ping", "time", "hello", "client", "info", "llen"}
    ),
    "arq": None,
    "saq": None,
    "streaq": None,
    "taskiq": None,
    "taskiq-list": None,
}


# What a reader needs to know to read each library's figures (seen with the versions
# the report lists; check them again when a peer's version changes).
NOTES = {
    "aioworker": "one Lua call enqueues up to 2,000 jobs; jobs are leased, acknowledged "
    "and their results kept (result_ttl), like a production setup. Installed in its own "
    "virtualenv from the measured source with its runtime dependencies only (no extras), "
    "like the peers. In the pickup scenario the worker runs as deployed (no burst) and "
    "is stopped with SIGTERM after the last job.",
    "arq": "no bulk enqueue (each enqueue_job is a WATCH/MULTI transaction); the worker "
    "polls the queue every poll_delay (0.5 s) for at most queue_read_limit ids, so at a "
    "lower max_jobs the polling, not the jobs, limits it (a 5,000-job probe at "
    "max_jobs=100 ran about 1,050 jobs/s against 2,700 at 1,000). Pins redis<6.",
    "saq": "no bulk enqueue (Queue.map gathers enqueue calls, throttled to 20 at once); "
    "each of the `concurrency` loops holds its own blocking BLMOVE, so 1,000 Redis "
    "connections at concurrency 1,000; 0.26.4 imports typing_extensions without "
    "declaring it, so the bench installs it. Pins redis<8.",
    "streaq": "bulk enqueue through one pipeline (enqueue_many); uses Redis functions "
    "(Redis 7+) and coredis rather than redis-py; starts one consumer task per unit "
    "of concurrency.",
    "taskiq": "no bulk enqueue; RedisStreamBroker reads up to 100 messages per "
    "XREADGROUP and acknowledges each one; its consumer group starts at '$', so jobs "
    "sent before any broker.startup() created the group are never delivered. "
    "Cancelling taskiq.api.run_receiver_task did not return, so the bench stops the "
    "receiver with its shutdown event, as `taskiq worker` does. taskiq-redis needs redis>=8.",
    "taskiq-list": "taskiq with ListQueueBroker: LPUSH and one BRPOP per message, no "
    "acknowledgement (a job is lost if the worker dies while running it).",
}


# -- the private Redis server --------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, redis.Redis]]:
    """Start a throwaway ``redis-server`` and stop it by PID afterwards."""
    port = _free_port()
    log = BENCH_DIR / ".venvs" / "redis-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        proc = subprocess.Popen(
            server_args(port),
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        wait_until_up(proc, client, time.monotonic() + 10, f"redis-server did not start; see {log}")
        yield url, client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- other work on the machine -------------------------------------------------------


def wait_until_quiet(max_wait_s: float, threshold_cores: float) -> float:
    """Wait until the machine is nearly idle (other people's builds and tests share it).

    :returns: the cores busy in the last one-second sample.
    """
    deadline = time.monotonic() + max_wait_s
    while True:
        before = machine_cpu_s()
        time.sleep(1.0)
        busy = machine_cpu_s() - before
        if busy < threshold_cores or time.monotonic() >= deadline:
            return busy


def run_ceiling(client: redis.Redis, url: str, repeats: int) -> list[dict[str, Any]]:
    """Run ``bench/ceiling.py`` in aioworker's virtualenv (redis-py, no extras)."""
    results = []
    for repeat in range(repeats):
        wait_until_quiet(5, QUIET_CORES)
        reset(client)
        t0 = time.monotonic()
        cpu0 = (machine_cpu_s(), children_cpu_s(), redis_cpu_s(client))
        proc = subprocess.run(
            [str(peers.venv_python(SUBJECT)), str(BENCH_DIR / "ceiling.py"), "--redis-url", url],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        took = time.monotonic() - t0
        others = machine_cpu_s() - cpu0[0] - (children_cpu_s() - cpu0[1])
        others -= redis_cpu_s(client) - cpu0[2]
        try:
            result = dict(json.loads(proc.stdout.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            result = {"error": tail(proc.stderr) or f"exit status {proc.returncode}"}
        result["other_cores"] = round(max(0.0, others) / took, 2)
        results.append(result)
        shown = result.get("jobs_per_s")
        print(
            f"[{repeat + 1}/{repeats}] ceiling "
            + (f"{shown:,.0f} jobs/s" if shown else "FAILED " + result["error"]),
            flush=True,
        )
    return results


# -- figures -------------------------------------------------------------------------


def redis_cost(run: dict[str, Any]) -> dict[str, float]:
    """Commands and round trips per job of a run's worker phase.

    ``run["commands"]`` holds the calls per command from ``INFO commandstats``
    before and after the worker phase (INFO itself left out).
    """
    commands = run.get("commands", {})
    if not commands or not run.get("jobs"):
        return {}
    client = CLIENT_COMMANDS.get(run["lib"])
    trips = sum(n for k, n in commands.items() if client is None or k in client)
    return {
        "commands_per_job": round(sum(commands.values()) / run["jobs"], 2),
        "round_trips_per_job": round(trips / run["jobs"], 2),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, float] | None]:
    """Median, min and max of each metric over the successful runs."""
    ok = [{**r, **redis_cost(r)} for r in runs if "error" not in r]
    out: dict[str, dict[str, float] | None] = {}
    for key, _, _ in ALL_METRICS:
        values = [float(r[key]) for r in ok if r.get(key) is not None]
        out[key] = (
            {"median": statistics.median(values), "min": min(values), "max": max(values)}
            if values
            else None
        )
    return out


def ratio_rows(
    summaries: dict[tuple[str, str], dict[str, dict[str, float] | None]],
    libs: list[str],
    scenarios: list[str],
) -> list[tuple[str, str, str, str]]:
    """For each scenario and metric: aioworker's median over the best peer's."""
    rows = []
    for scenario in scenarios:
        for key, label, higher_better in SCENARIO_METRICS[scenario]:
            mine = summaries.get((SUBJECT, scenario), {}).get(key)
            peer_medians = [
                (lib, s["median"])
                for lib in libs
                if lib != SUBJECT and (s := summaries.get((lib, scenario), {}).get(key))
            ]
            if mine is None or not peer_medians:
                rows.append((scenario, label, "n/a", "n/a"))
                continue
            pick = max if higher_better else min
            best_lib, best = pick(peer_medians, key=lambda p: p[1])
            rows.append((scenario, label, best_lib, f"{mine['median'] / best:.2f}x"))
    return rows


# -- which aioworker ---------------------------------------------------------------


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


# what `pip install` needs to build the package
PACKAGE_FILES = ("aioworker", "pyproject.toml", "README.md")


def aioworker_source(ref: str | None) -> tuple[Path, str, str]:
    """The source tree to install aioworker from, and how to describe it.

    :param ref: a commit to measure instead of the working tree; its package
        files are extracted under ``bench/.venvs/aioworker-src/<sha>``.
    :returns: the source directory, a description for the report and an
        install label (the same label is not installed twice).
    """
    src_root = BENCH_DIR / ".venvs" / "aioworker-src"
    if ref is None:
        dest = src_root / "worktree"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for name in PACKAGE_FILES:
            src = REPO_ROOT / name
            if src.is_dir():
                shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(src, dest / name)
        try:
            head = _git("rev-parse", "--short", "HEAD")
            dirty = _git("status", "--porcelain", "--", "aioworker")
        except (OSError, subprocess.CalledProcessError):
            return dest, "working tree", f"worktree {time.time()}"
        desc = f"working tree at {head}" + (
            " with uncommitted changes to aioworker/" if dirty else ""
        )
        # the working tree may change between runs: install it every time
        return dest, desc, f"worktree {time.time()}"
    sha = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    dest = src_root / sha
    if not (dest / "pyproject.toml").exists():
        archive = subprocess.run(
            ["git", "archive", "--format=tar", sha, *PACKAGE_FILES],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        ).stdout
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(dest, filter="data")
    return dest, f"commit {sha[:7]}", sha


# -- machine -------------------------------------------------------------------------


def machine_info(client: redis.Redis) -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    ram = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    server = client.info("server")
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu,
        "ram": ram,
        "kernel": platform.release(),
        "redis-server": f"{server.get('redis_version')} (private instance, "
        "--save '' --appendonly no, loopback TCP)",
        "python": f"{platform.python_version()} (every virtualenv)",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def lib_versions(lib: Lib) -> dict[str, str]:
    dists = {
        "aioworker": ("aioworker", "redis", "hiredis", "orjson", "uvloop", "opentelemetry-api"),
        "arq": ("arq", "redis", "hiredis", "uvloop"),
        "saq": ("saq", "redis", "hiredis", "uvloop"),
        "streaq": ("streaq", "coredis", "anyio", "uvloop"),
        "taskiq": ("taskiq", "taskiq-redis", "redis", "hiredis", "uvloop"),
    }[lib.peer or lib.name]
    return peers.installed_versions(lib.python(), dists)


# -- report --------------------------------------------------------------------------


def group_runs(report: dict[str, Any]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """The report's runs by (library, scenario), in the order they ran."""
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {
        (lib, sc): [] for lib in report["libs"] for sc in report["scenarios"]
    }
    for r in report["runs"]:
        runs.setdefault((r["lib"], r["scenario"]), []).append(r)
    return runs


THROUGHPUT_TEXT = (
    "Throughput (noop, io). Redis commands/job are the calls `INFO commandstats` "
    "counted from the worker's go to its report (the bench's own INFO calls left out; "
    "commands inside Lua scripts and Redis functions included). Round trips/job: for "
    "aioworker, the commands its Python code sends (EVALSHA/EVAL, BLPOP, BLMOVE, PING, "
    "TIME, HELLO, CLIENT, INFO, and one per pipelined queue-size check), since every other "
    "command runs inside its scripts (the occasional wake-up RPUSH is left out, as RPUSH "
    "also runs once per job inside a script); for the peers, every command, an upper "
    "bound: arq, saq and streaq pipeline MULTI/EXEC transactions (each queued command "
    "counts), and streaq's FCALL functions run some of its commands; taskiq-list's "
    "figure is exact (one BRPOP per job) and taskiq's nearly so (XACK per job, "
    "XREADGROUP per 100)."
)
PICKUP_TEXT = (
    "Pickup latency: {jobs[pickup]:,} jobs enqueued one at a time at 500/s into a "
    "worker started and idle for 2 s (concurrency {concurrency[pickup]}); each job "
    "carries the producer's `time.time()` at enqueue and the job body subtracts it "
    "from its own `time.time()` (same machine, same clock)."
)
INFLIGHT_TEXT = (
    "In-flight work: {jobs[inflight]:,} jobs of `await asyncio.sleep(5)` enqueued in "
    "bulk, then one worker process at concurrency {concurrency[inflight]:,}; peak RSS "
    "of the worker, and the time from the first job's start to the last job's end "
    "(5 s is the ideal)."
)


def render(report: dict[str, Any]) -> str:
    """RESULTS.md from a report as saved in RESULTS.json."""
    args = argparse.Namespace(**report["options"])
    libs: list[str] = report["libs"]
    scenarios: list[str] = report["scenarios"]
    runs = group_runs(report)
    install_errors: dict[str, str] = report["install_errors"]
    versions: dict[str, dict[str, str]] = report["versions"]
    machine: dict[str, str] = report["machine"]
    concurrency: dict[str, int] = report["concurrency"]
    retried: int = report["retried"]
    summaries = {k: summarize(v) for k, v in runs.items()}
    lines: list[str] = []
    w = lines.append
    w("# aioworker side-by-side benchmark")
    w("")
    w(f"Run on {report['started_at']} with `python -m bench.run {report['command']}`, "
      f"{report['elapsed_s'] / 60:.1f} minutes in all.")  # fmt: skip
    w("")
    w(f"- jobs per run: {args.jobs:,}; repeats: {args.repeats}; "
      f"concurrency: noop {concurrency['noop']}, io {concurrency['io']} "
      f"(the same for every library); io job: `await asyncio.sleep(0.05)`")  # fmt: skip
    if args.quick:
        w("- **quick smoke run**: too few jobs and repeats for the figures to mean much")
    elif args.jobs != 20_000 or args.repeats != 3:
        w("- reduced from the standard 20,000 jobs x 3 repeats")
    jobs = report.get("jobs", {})
    if "pickup" in scenarios or "inflight" in scenarios:
        w(f"- pickup: {jobs.get('pickup', 0):,} jobs per run; in-flight: "
          f"{jobs.get('inflight', 0):,} jobs per run at concurrency "
          f"{concurrency.get('inflight', 0):,}, "
          f"{getattr(args, 'inflight_repeats', args.repeats)} repeat(s)")  # fmt: skip
    inflight_repeats = getattr(args, "inflight_repeats", args.repeats)
    if "inflight" in scenarios and inflight_repeats < args.repeats and not args.quick:
        w(
            f"- **the in-flight scenario ran {inflight_repeats} time(s) per library, not "
            f"{args.repeats}**, to keep the whole run within its time"
        )
    w("- each run is a fresh process pair in the library's own virtualenv: the producer "
      "enqueues all jobs (timed: enqueue jobs/s), then the worker process (started "
      "before the enqueue, idle until told to go) runs them; a counter in the worker "
      "process stops the clock at the last job body (jobs/s); peak RSS is the worker "
      "process's `ru_maxrss`, libraries and interpreter included; worker CPU is the "
      "worker process's user+system time up to the last job, Redis CPU the private "
      "server's over the whole run (enqueue included), both divided by the jobs")  # fmt: skip
    w("- figures are medians over the repeats with min-max in brackets; libraries are "
      "interleaved within each repeat, the private Redis is flushed (data, scripts, "
      "functions) before every run; every library runs on uvloop")  # fmt: skip
    disturbed = sum(
        1
        for rs in runs.values()
        for r in rs
        if "error" not in r and r.get("other_cores", 0) > DISTURBED_CORES
    )
    w(
        f"- the machine is shared: before each run the bench waits up to {args.quiet_wait:.0f} s "
        f"for other work to drop below {QUIET_CORES} cores, measures what other work used "
        f"during the run (`others` below, in cores) and runs again, up to {args.retries} "
        f"times while within its {args.budget:.0f}-minute budget, a run that started quiet "
        f"but during which other work went above {DISTURBED_CORES} cores; {retried} run(s) "
        f"were run again, and {disturbed} run(s) kept in the figures were disturbed, which "
        "lowers throughput; CPU per job is much less sensitive to it"
    )
    w("")
    w("## Machine")
    w("")
    w("| | |")
    w("|---|---|")
    for k, v in machine.items():
        w(f"| {k} | {v} |")
    w("")
    w("## Libraries and settings")
    w("")
    w("| library | versions | settings |")
    w("|---|---|---|")
    for lib in libs:
        ver = (
            ", ".join(
                f"{k} {'not installed' if v == 'missing' else v}"
                for k, v in versions.get(lib, {}).items()
            )
            or "n/a"
        )
        settings = next(
            (r["settings"] for sc in scenarios for r in runs[(lib, sc)] if "settings" in r),
            None,
        )
        shown = ("; ".join(f"{k}={v}" for k, v in settings.items()) if settings else "n/a").replace(
            "|", "/"
        )
        w(f"| {lib} | {ver} | {shown} |")
    w("")
    w("The concurrency setting named above takes the scenario's concurrency.")
    w("")
    w("Notes on the libraries, as seen with the versions above:")
    w("")
    for lib in libs:
        if lib in NOTES:
            w(f"- **{lib}**: {NOTES[lib]}")
    w("")
    w("## Results")
    w("")
    table_groups = [
        ([sc for sc in scenarios if sc in THROUGHPUT], METRICS, THROUGHPUT_TEXT),
        ([sc for sc in scenarios if sc == "pickup"], SCENARIO_METRICS["pickup"], PICKUP_TEXT),
        ([sc for sc in scenarios if sc == "inflight"], SCENARIO_METRICS["inflight"], INFLIGHT_TEXT),
    ]
    for group, metrics, text in table_groups:
        if not group:
            continue
        w(text.format(jobs=report.get("jobs", {}), concurrency=concurrency))
        w("")
        header = "| scenario | library | " + " | ".join(label for _, label, _ in metrics) + " |"
        w(header)
        w("|---|---|" + "---:|" * len(metrics))
        for scenario in group:
            for lib in libs:
                ok_runs = [r for r in runs[(lib, scenario)] if "error" not in r]
                stats = summaries[(lib, scenario)]
                cells = [cell(stats[key], len(ok_runs)) for key, _, _ in metrics]
                failed = len(runs[(lib, scenario)]) - len(ok_runs)
                name = f"**{lib}**" if lib == SUBJECT else lib
                if failed and ok_runs:
                    name += f" ({failed} of {len(runs[(lib, scenario)])} runs failed)"
                w(f"| {scenario} | {name} | " + " | ".join(cells) + " |")
        w("")
    w("## aioworker ÷ best peer")
    w("")
    w("Above 1 is better for throughput; below 1 is better for memory and CPU.")
    w("")
    w("| scenario | metric | best peer | aioworker ÷ best peer |")
    w("|---|---|---|---:|")
    for row in ratio_rows(summaries, libs, scenarios):
        w("| " + " | ".join(row) + " |")
    w("")
    ceiling = [c for c in report.get("ceiling", []) if "error" not in c]
    if ceiling:
        values = [c["jobs_per_s"] for c in ceiling]
        stat = {"median": statistics.median(values), "min": min(values), "max": max(values)}
        w("## Ceiling")
        w("")
        w(
            f"One Python process pushing LPUSH, then RPOP + INCR (an ack-like write) per job "
            f"through redis-py {ceiling[0].get('redis', '')} with pipelining in batches of "
            f"{ceiling[0]['batch']:,} jobs (`bench/ceiling.py`, {ceiling[0]['jobs']:,} jobs, "
            f"no job bodies, no serialisation): **{cell(stat, len(values))} jobs/s** over "
            f"{len(values)} run(s)."
        )
        noop = summaries.get((SUBJECT, "noop"), {}).get("jobs_per_s")
        if noop:
            w("")
            w(
                f"aioworker's no-op throughput above is {noop['median'] / stat['median']:.0%} "
                "of it (medians)."
            )
        w("")
    lines += targets.render(targets.as_summary(summaries, SUBJECT), num)
    lines += scaling_report.render(report)
    failures = [(lib, sc, r) for (lib, sc), rs in runs.items() for r in rs if "error" in r]
    if install_errors or failures:
        w("## Failures")
        w("")
        for lib, err in install_errors.items():
            w(f"- **{lib}** did not install:")
            w("")
            w("```")
            w(err)
            w("```")
        seen: set[tuple[str, str]] = set()
        for lib, sc, r in failures:
            if lib in install_errors or (lib, sc) in seen:
                continue
            seen.add((lib, sc))
            w(f"- **{lib}**, {sc} (first failure shown):")
            w("")
            w("```")
            w(r["error"])
            w("```")
        w("")
    hung = [
        (lib, sc)
        for (lib, sc), rs in runs.items()
        for r in rs
        if "error" not in r and r.get("stop_s") is None
    ]
    if hung:
        w("## Workers that did not stop")
        w("")
        w(
            "Runs whose worker was still running 30 s after the last job "
            "(their figures stand; the process was ended without waiting):"
        )
        w("")
        for lib, sc in sorted(set(hung)):
            w(f"- {lib}, {sc}: {hung.count((lib, sc))} run(s)")
        w("")
    w("## Every run")
    w("")
    w(
        "| scenario | library | enqueue jobs/s | jobs/s | peak RSS MB | worker CPU s "
        "| Redis CPU s | stop s | others |"
    )
    w("|---|---|---|---|---|---|---|---|---|")
    for scenario in scenarios:
        for lib in libs:
            rs = [r for r in runs[(lib, scenario)] if "error" not in r]
            if not rs:
                continue

            def col(key: str, rs: list[dict[str, Any]] = rs) -> str:
                return ", ".join("-" if r.get(key) is None else num(r[key]) for r in rs)

            w(f"| {scenario} | {lib} | {col('enqueue_per_s')} | {col('jobs_per_s')} | "
              f"{col('peak_rss_mb')} | {col('worker_cpu_s')} | {col('redis_cpu_s')} | "
              f"{col('stop_s')} | {col('other_cores')} |")  # fmt: skip
    w("")
    w(
        "`worker CPU s` is the worker process's user+system CPU from start to the last job; "
        "`Redis CPU s` is the private server's CPU over the whole run (enqueue included); "
        "`stop s` is how long the worker took to stop after the last job (not timed above); "
        "`others` is the CPU other work on the machine used during the run, in cores."
    )
    return "\n".join(lines) + "\n"


def print_table(
    libs: list[str], scenarios: list[str], runs: dict[tuple[str, str], list[dict[str, Any]]]
) -> None:
    for scenario in scenarios:
        metrics = SCENARIO_METRICS[scenario]
        head = f"{'scenario':<9}{'library':<13}" + "".join(f"{lbl:>24}" for _, lbl, _ in metrics)
        print(head)
        print("-" * len(head))
        for lib in libs:
            rs = runs[(lib, scenario)]
            stats = summarize(rs)
            ok = len([r for r in rs if "error" not in r])
            cells = "".join(f"{cell(stats[key], ok):>24}" for key, _, _ in metrics)
            print(f"{scenario:<9}{lib:<13}{cells}")
        print()


# -- main ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=None, help="runs per library and scenario (3)"
    )
    parser.add_argument("--jobs", type=int, default=None, help="jobs per run (20000)")
    parser.add_argument("--libs", nargs="+", default=list(LIBS), help="libraries to run")
    parser.add_argument(
        "--scenarios", nargs="+", default=list(SCENARIOS), help=", ".join(SCENARIOS)
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: 2,000 jobs, 1 repeat")
    parser.add_argument("--noop-concurrency", type=int, default=1000)
    parser.add_argument("--io-concurrency", type=int, default=1000)
    parser.add_argument(
        "--inflight-repeats",
        type=int,
        default=None,
        help="repeats of the in-flight scenario (as --repeats)",
    )
    parser.add_argument("--pickup-jobs", type=int, default=None, help="pickup jobs (1000)")
    parser.add_argument("--pickup-concurrency", type=int, default=100)
    parser.add_argument("--inflight-jobs", type=int, default=None, help="(10000)")
    parser.add_argument("--inflight-concurrency", type=int, default=None, help="(as many as jobs)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--output", type=Path, default=None, help="report file")
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=20.0,
        help="seconds to wait before each run for other work on the machine to stop",
    )
    parser.add_argument(
        "--budget",
        type=float,
        default=15.0,
        help="minutes after which the bench stops waiting for quiet and running runs again",
    )
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="times to run again a run that other work on the machine disturbed",
    )
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        help="only write the report again from a saved RESULTS.json",
    )
    parser.add_argument(
        "--no-ceiling",
        dest="ceiling",
        action="store_false",
        help="skip the redis-py LPUSH + RPOP + INCR ceiling",
    )
    parser.add_argument(
        "--aioworker-ref",
        default=None,
        help="measure aioworker as of this git commit instead of the working tree",
    )
    scaling.add_arguments(parser)
    args = parser.parse_args(argv)
    args.libs = [x for item in args.libs for x in item.split(",") if x]
    args.scenarios = [x for item in args.scenarios for x in item.split(",") if x]
    for name in args.libs:
        if name not in LIBS:
            parser.error(f"unknown library {name!r}; choose from {', '.join(LIBS)}")
    for name in args.scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}; choose from {', '.join(SCENARIOS)}")
    if args.jobs is None:
        args.jobs = 2_000 if args.quick else 20_000
    if args.inflight_repeats is None:
        args.inflight_repeats = args.repeats
    if args.pickup_jobs is None:
        args.pickup_jobs = 300 if args.quick else 1_000
    if args.inflight_jobs is None:
        args.inflight_jobs = 2_000 if args.quick else 10_000
    if args.inflight_concurrency is None:
        args.inflight_concurrency = args.inflight_jobs
    if args.repeats is None:
        args.repeats = 1 if args.quick else 3
    if args.output is None:
        args.output = BENCH_DIR / ("RESULTS-quick.md" if args.quick else "RESULTS.md")
    scaling.resolve(args, parser)
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.from_json is not None:
        write_report(json.loads(args.from_json.read_text()), args.output)
        return
    # a plain kill still stops the private redis-server and the running library
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    started_at = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    libs: list[str] = args.libs
    # one library per run; the scaling scenario runs its own way, after these
    scenarios: list[str] = [sc for sc in args.scenarios if sc != "scaling"]
    concurrency = {
        "noop": args.noop_concurrency,
        "io": args.io_concurrency,
        "pickup": args.pickup_concurrency,
        "inflight": args.inflight_concurrency,
    }
    jobs = {
        "noop": args.jobs,
        "io": args.jobs,
        "pickup": args.pickup_jobs,
        "inflight": args.inflight_jobs,
    }

    install_errors: dict[str, str] = {}
    versions: dict[str, dict[str, str]] = {}
    install_log = BENCH_DIR / ".venvs" / "install.log"
    install_log.parent.mkdir(parents=True, exist_ok=True)
    set_up: set[str] = set()
    aioworker_src, aioworker_desc, aioworker_label = aioworker_source(args.aioworker_ref)
    for name in libs:
        lib = LIBS[name]
        if name == SUBJECT:
            print(f"installing {SUBJECT} ({aioworker_desc}) in its own venv ...", flush=True)
            _, error = peers.ensure_aioworker(aioworker_src, aioworker_label, install_log)
            if error:
                install_errors[name] = error
                print(f"  {SUBJECT} failed to install:\n{error}", flush=True)
        if lib.peer is not None and lib.peer not in set_up:
            set_up.add(lib.peer)
            print(f"setting up {lib.peer} in {peers.VENVS_DIR / lib.peer} ...", flush=True)
            _, error = peers.ensure_peer(peers.PEERS[lib.peer], install_log)
            if error:
                install_errors[lib.peer] = error
                print(f"  {lib.peer} failed to install:\n{error}", flush=True)
        if lib.peer in install_errors:
            install_errors[name] = install_errors[lib.peer]
        else:
            versions[name] = lib_versions(lib)
    for name in list(install_errors):
        if name not in libs:
            del install_errors[name]

    if SUBJECT in versions:
        versions[SUBJECT]["source"] = aioworker_desc
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {
        (lib, sc): [] for lib in libs for sc in scenarios
    }
    retried = 0
    with redis_server() as (url, client):
        machine = machine_info(client)
        print(f"private redis at {url}", flush=True)
        for repeat in range(args.repeats):
            for scenario in scenarios:
                if scenario == "inflight" and repeat >= args.inflight_repeats:
                    continue
                shift = repeat % len(libs)
                order = libs[shift:] + libs[:shift]
                for name in order:
                    if name in install_errors:
                        runs[(name, scenario)].append(
                            {"lib": name, "scenario": scenario, "error": "not installed"}
                        )
                        continue
                    # past the time budget, runs are taken as they come
                    in_budget = time.monotonic() - started < args.budget * 60
                    retries = args.retries if in_budget else 0
                    for attempt in range(1 + retries):
                        busy = wait_until_quiet(args.quiet_wait if in_budget else 0, QUIET_CORES)
                        if busy >= QUIET_CORES:
                            # busy all through the wait: running again would not help
                            retries = attempt
                        reset(client)
                        t0 = time.monotonic()
                        cpu0 = (machine_cpu_s(), children_cpu_s(), redis_cpu_s(client))
                        result = run_one(
                            LIBS[name],
                            scenario,
                            jobs[scenario],
                            concurrency[scenario],
                            url,
                            args.timeout,
                        )
                        took = time.monotonic() - t0
                        everything, ours, server = (
                            machine_cpu_s() - cpu0[0],
                            children_cpu_s() - cpu0[1],
                            redis_cpu_s(client) - cpu0[2],
                        )
                        # what the rest of the machine used meanwhile, in cores
                        result["other_cores"] = round(
                            max(0.0, everything - ours - server) / took, 2
                        )
                        if "error" not in result:
                            result["redis_cpu_s"] = round(server, 3)
                            per_job = 1e6 / jobs[scenario]
                            result["redis_cpu_us_per_job"] = round(server * per_job, 1)
                            result["worker_cpu_us_per_job"] = round(
                                result["worker_cpu_s"] * per_job, 1
                            )
                        calm = result["other_cores"] <= DISTURBED_CORES
                        if calm or "error" in result or attempt >= retries:
                            break
                        retried += 1
                        print(
                            f"    {name} {scenario}: other work used "
                            f"{result['other_cores']:.2f} cores meanwhile; running it again",
                            flush=True,
                        )
                    runs[(name, scenario)].append(result)
                    if "error" in result:
                        first = result["error"].strip().splitlines()[-1:] or [""]
                        summary = f"FAILED: {first[0]}"
                    elif scenario == "pickup":
                        summary = (
                            f"pickup p50 {result['pickup_p50_ms']:.2f} ms  "
                            f"p99 {result['pickup_p99_ms']:.2f} ms"
                        )
                    elif scenario == "inflight":
                        summary = (
                            f"span {result['span_s']:.2f} s  rss {result['peak_rss_mb']:>6.1f} MB"
                        )
                    else:
                        summary = (
                            f"enqueue {result['enqueue_per_s']:>9,.0f}/s  "
                            f"run {result['jobs_per_s']:>8,.0f}/s  "
                            f"rss {result['peak_rss_mb']:>6.1f} MB"
                        )
                    print(
                        f"[{repeat + 1}/{args.repeats}] {scenario:<5} {name:<12} "
                        f"{summary}  ({took:.1f} s, others {result['other_cores']:.2f} cores)",
                        flush=True,
                    )
        scaled = None
        if "scaling" in args.scenarios:
            scaled = scaling.run(args, libs, install_errors, url, client)
        ceiling = run_ceiling(client, url, args.repeats) if args.ceiling else []
        reset(client)

    machine["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report = {
        "command": " ".join(sys.argv[1:] if argv is None else argv),
        "started_at": started_at,
        "elapsed_s": round(time.monotonic() - started, 1),
        "options": {
            k: getattr(args, k)
            for k in (
                "jobs",
                "repeats",
                "inflight_repeats",
                "quick",
                "quiet_wait",
                "budget",
                "retries",
                "timeout",
            )
        },
        "libs": libs,
        "scenarios": scenarios,
        "concurrency": concurrency,
        "jobs": jobs,
        "retried": retried,
        "ceiling": ceiling,
        "install_errors": install_errors,
        "versions": versions,
        "machine": machine,
        "runs": [r for rs in runs.values() for r in rs],
        "scaling": scaled,
    }
    write_report(report, args.output)


def write_report(report: dict[str, Any], output: Path) -> None:
    """Print the table, then write the report as Markdown and as JSON beside it."""
    print()
    print_table(report["libs"], report["scenarios"], group_runs(report))
    scaling_report.print_table(report)
    output.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    output.write_text(render(report))
    print(f"\nwrote {output} and {output.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
