"""The scaling scenario of ``python -m bench.run``: 1, 2 and 4 worker processes.

Every library runs the same jobs through the same driver as the other
scenarios, with ``--workers N``: the producer enqueues, starts N worker
processes, says go to all of them and stops the clock when the counts the
processes report add up to the job count (``bench/libs/_harness.py``).

* ``noop``: no-op jobs at concurrency 1,000 per process, the CPU-bound case.
  On a 2-core machine where Redis shares the cores, 4 processes cannot beat 2
  here.
* ``io``: jobs of ``await asyncio.sleep(0.05)`` at a low concurrency per
  process (100), so one process is bound by its concurrency, not by the CPU,
  and adding processes should add throughput linearly until the CPU runs
  out. aioworker only by default; ``--scaling-peers-io`` adds the peers.

Each workload runs on the single private node, and aioworker's on a private
Redis Cluster of three masters without replicas too. streaq and taskiq-redis
support Redis Cluster as well: ``--scaling-cluster-peers`` runs them there
(left out by default to keep the scenario within about five minutes); arq and
saq have no cluster support. The cluster is started here and stopped by PID,
with no persistence.
The figures and the report section are in ``bench/scaling_report.py``, the
cluster starter in ``bench/cluster.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import redis

from bench import cluster, common
from bench.common import (
    BENCH_DIR,
    DISTURBED_CORES,
    QUIET_CORES,
    SUBJECT,
    children_cpu_s,
    machine_cpu_s,
    redis_cpu_s,
    reset,
    run_one,
)
from bench.scaling_report import CLUSTER_LIBS

WORKLOADS = ("noop", "io")
WORKERS = (1, 2, 4)
# taskiq-list is a variant of taskiq: left out to keep the scenario short
LIBS = ("aioworker", "arq", "saq", "streaq", "taskiq")
# seconds of machine CPU sampled before each run to see whether it is quiet
QUIET_SAMPLE_S = 0.3
# longest wait for quiet before one run (at most --quiet-wait)
QUIET_WAIT_S = 5.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The scaling scenario's options of ``python -m bench.run``."""
    group = parser.add_argument_group("scaling scenario")
    group.add_argument(
        "--scaling-libs",
        nargs="+",
        default=list(LIBS),
        help=f"libraries of the scaling scenario, among --libs ({' '.join(LIBS)})",
    )
    group.add_argument(
        "--scaling-workloads",
        nargs="+",
        default=list(WORKLOADS),
        help="noop (CPU-bound), io (bound by the concurrency per process); default both",
    )
    group.add_argument(
        "--scaling-peers-io",
        action="store_true",
        help="run the peers' io workload too (by default only aioworker's runs)",
    )
    group.add_argument(
        "--scaling-workers",
        nargs="+",
        type=int,
        default=list(WORKERS),
        help="worker process counts (1 2 4)",
    )
    group.add_argument(
        "--scaling-jobs", type=int, default=None, help="aioworker's noop jobs per run (20000)"
    )
    group.add_argument(
        "--scaling-peer-jobs",
        type=int,
        default=None,
        help="the peers' noop jobs per run; they run 3-12x slower (3000)",
    )
    group.add_argument(
        "--scaling-io-jobs", type=int, default=None, help="io jobs per run, every library (4000)"
    )
    group.add_argument("--scaling-repeats", type=int, default=None, help="repeats (as --repeats)")
    group.add_argument("--scaling-noop-concurrency", type=int, default=1000)
    group.add_argument("--scaling-io-concurrency", type=int, default=100)
    group.add_argument(
        "--scaling-budget",
        type=float,
        default=4.0,
        help="minutes after which scaling runs no longer wait for quiet or run again",
    )
    group.add_argument(
        "--scaling-cluster-peers",
        action="store_true",
        help="run streaq and taskiq on the cluster too (aioworker always runs there)",
    )
    group.add_argument(
        "--no-cluster",
        dest="scaling_cluster",
        action="store_false",
        help="skip the Redis Cluster runs of the scaling scenario",
    )


def resolve(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """Fill in the defaults that depend on ``--quick`` and ``--repeats``."""
    args.scaling_workloads = [x for item in args.scaling_workloads for x in item.split(",") if x]
    for name in args.scaling_workloads:
        if name not in WORKLOADS:
            parser.error(f"unknown scaling workload {name!r}; choose from {', '.join(WORKLOADS)}")
    args.scaling_libs = [x for item in args.scaling_libs for x in item.split(",") if x]
    if any(n < 1 for n in args.scaling_workers):
        parser.error("--scaling-workers must be at least 1")
    if args.scaling_jobs is None:
        args.scaling_jobs = 4_000 if args.quick else 20_000
    if args.scaling_peer_jobs is None:
        args.scaling_peer_jobs = 1_000 if args.quick else 3_000
    if args.scaling_io_jobs is None:
        args.scaling_io_jobs = 1_000 if args.quick else 4_000
    if args.scaling_repeats is None:
        args.scaling_repeats = args.repeats


# -- the runs ------------------------------------------------------------------------


def _quiet(max_wait_s: float, threshold_cores: float) -> float:
    """As ``bench.run.wait_until_quiet`` with shorter samples: the cores busy last."""
    deadline = time.monotonic() + max_wait_s
    while True:
        before = machine_cpu_s()
        time.sleep(QUIET_SAMPLE_S)
        busy = (machine_cpu_s() - before) / QUIET_SAMPLE_S
        if busy < threshold_cores or time.monotonic() >= deadline:
            return busy


def _reset(clients: list[redis.Redis]) -> None:
    for client in clients:
        reset(client)


def _redis_cpu_s(clients: list[redis.Redis]) -> float:
    return sum(redis_cpu_s(client) for client in clients)


def run(
    args: argparse.Namespace,
    libs: list[str],
    install_errors: dict[str, str],
    url: str,
    client: redis.Redis,
) -> dict[str, Any]:
    """Run the scaling scenario: every library x workload x process count, repeated.

    :param libs: the libraries of the whole bench; those also in ``--scaling-libs`` run.
    :param install_errors: libraries that did not install (recorded as failed).
    :param url: the single private node, shared with the other scenarios.
    :returns: the ``scaling`` part of ``RESULTS.json``.
    """
    started = time.monotonic()
    names = [name for name in libs if name in args.scaling_libs]
    on_cluster = [
        name
        for name in names
        if name in CLUSTER_LIBS and (name == SUBJECT or args.scaling_cluster_peers)
    ]
    targets = {"single": (url, [client])}
    runs: list[dict[str, Any]] = []
    retried = 0
    jobs = {
        "noop": {
            name: args.scaling_jobs if name == SUBJECT else args.scaling_peer_jobs for name in names
        },
        "io": {name: args.scaling_io_jobs for name in names},
    }
    # which libraries run each workload
    plan = {
        workload: [
            name for name in names if workload == "noop" or name == SUBJECT or args.scaling_peers_io
        ]
        for workload in args.scaling_workloads
    }
    concurrency = {"noop": args.scaling_noop_concurrency, "io": args.scaling_io_concurrency}
    with contextlib.ExitStack() as stack:
        if args.scaling_cluster and on_cluster:
            print(f"starting a Redis Cluster of {cluster.MASTERS} masters ...", flush=True)
            log_dir = BENCH_DIR / ".venvs"
            targets["cluster"] = stack.enter_context(cluster.redis_cluster(log_dir))
            print(f"private cluster at {targets['cluster'][0]}", flush=True)
        total = args.scaling_repeats
        for repeat in range(total):
            for workload, name, target, workers in _order(
                plan, repeat, list(targets), on_cluster, args.scaling_workers
            ):
                base = {
                    "lib": name,
                    "scenario": "scaling",
                    "workload": workload,
                    "target": target,
                    "workers": workers,
                }
                if name in install_errors:
                    runs.append({**base, "error": "not installed"})
                    continue
                # past the time budget, runs are taken as they come
                in_budget = time.monotonic() - started < args.scaling_budget * 60
                retries = args.retries if in_budget else 0
                for attempt in range(1 + retries):
                    wait_s = min(args.quiet_wait, QUIET_WAIT_S) if in_budget else 0
                    if _quiet(wait_s, QUIET_CORES) >= QUIET_CORES:
                        retries = attempt  # busy all through the wait: again would not help
                    result = _run_one(
                        args, name, jobs[workload][name], concurrency[workload], workers,
                        base, *targets[target],
                    )  # fmt: skip
                    calm = result["other_cores"] <= DISTURBED_CORES
                    if calm or "error" in result or attempt >= retries:
                        break
                    retried += 1
                runs.append(result)
                _print_run(repeat, total, result)
    return {
        "elapsed_s": round(time.monotonic() - started, 1),
        "libs": names,
        "plan": plan,
        "workloads": list(args.scaling_workloads),
        "workers": list(args.scaling_workers),
        "targets": list(targets),
        "on_cluster": on_cluster if "cluster" in targets else [],
        "jobs": jobs,
        "concurrency": concurrency,
        "repeats": args.scaling_repeats,
        "budget_min": args.scaling_budget,
        "retried": retried,
        "runs": runs,
    }


def _order(
    plan: dict[str, list[str]],
    repeat: int,
    targets: list[str],
    on_cluster: list[str],
    process_counts: list[int],
) -> Iterator[tuple[str, str, str, int]]:
    """(workload, library, target, processes) of one repeat; the libraries' order rotates."""
    for workload, names in plan.items():
        shift = repeat % len(names)
        for name in names[shift:] + names[:shift]:
            for target in targets:
                if target == "single" or name in on_cluster:
                    for workers in process_counts:
                        yield workload, name, target, workers


def _run_one(
    args: argparse.Namespace,
    name: str,
    jobs: int,
    concurrency: int,
    workers: int,
    base: dict[str, Any],
    url: str,
    clients: list[redis.Redis],
) -> dict[str, Any]:
    """One run of ``workers`` processes on a flushed server, with the CPU around it."""
    _reset(clients)
    lib = common.LIBS[name]
    lib = dataclasses.replace(lib, extra_args=(*lib.extra_args, "--workers", str(workers)))
    t0 = time.monotonic()
    cpu0 = (machine_cpu_s(), children_cpu_s(), _redis_cpu_s(clients))
    # the driver names the workload its scenario; the record keeps "scaling"
    result = {**run_one(lib, base["workload"], jobs, concurrency, url, args.timeout), **base}
    took = time.monotonic() - t0
    everything, ours, server = (
        machine_cpu_s() - cpu0[0],
        children_cpu_s() - cpu0[1],
        _redis_cpu_s(clients) - cpu0[2],
    )
    result["took_s"] = round(took, 1)
    # what the rest of the machine used meanwhile, in cores
    result["other_cores"] = round(max(0.0, everything - ours - server) / took, 2)
    if "error" not in result:
        result["redis_cpu_s"] = round(server, 3)
        result["redis_cpu_us_per_job"] = round(server * 1e6 / jobs, 1)
        result["worker_cpu_us_per_job"] = round(result["worker_cpu_s"] * 1e6 / jobs, 1)
    return result


def _print_run(repeat: int, total: int, r: dict[str, Any]) -> None:
    where = "cluster" if r["target"] == "cluster" else "single"
    head = f"[{repeat + 1}/{total}] scaling {r['workload']:<4} {r['lib']:<9} {where:<7}"
    head += f" x{r['workers']}"
    if "error" in r:
        lines = r["error"].strip().splitlines()[-1:] or [""]
        print(f"{head}  FAILED: {lines[0]}", flush=True)
        return
    print(
        f"{head}  run {r['jobs_per_s']:>8,.0f}/s  cpu {r['worker_cpu_us_per_job']:>6.0f} us/job  "
        f"rss {r['peak_rss_mb']:>6.1f} MB  ({r['took_s']:.1f} s, others {r['other_cores']:.2f} "
        "cores)",
        flush=True,
    )
