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
Figures are medians with min-max over the repeats; ``÷ 1 process`` is jobs/s
at N processes over jobs/s at 1 (medians), and ``cluster ÷ single node`` a
library's jobs/s on the cluster over the single node's at the same N.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import redis

WORKLOADS = ("noop", "io")
WORKERS = (1, 2, 4)
# taskiq-list is a variant of taskiq: left out to keep the scenario short
LIBS = ("aioworker", "arq", "saq", "streaq", "taskiq")
# arq and saq take a single Redis connection; streaq and taskiq-redis have cluster clients
CLUSTER_LIBS = ("aioworker", "streaq", "taskiq", "taskiq-list")
CLUSTER_MASTERS = 3
# seconds of machine CPU sampled before each run to see whether it is quiet
QUIET_SAMPLE_S = 0.3
# longest wait for quiet before one run (at most --quiet-wait)
QUIET_WAIT_S = 5.0
TARGETS = ("single", "cluster")
TARGET_LABEL = {"single": "single node", "cluster": f"cluster ({CLUSTER_MASTERS} masters)"}


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


# -- the private cluster -------------------------------------------------------------


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@contextlib.contextmanager
def redis_cluster(log_dir: Path) -> Iterator[tuple[str, list[redis.Redis]]]:
    """Start a throwaway cluster of three masters; stop every node by PID afterwards.

    :returns: the first node's URL (aioworker finds the others from it) and a
        client per master.
    """
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[redis.Redis] = []
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        ports = []
        while len(ports) < CLUSTER_MASTERS:
            port = _cluster_port()
            if port not in ports and port + 10000 not in ports:
                ports.append(port)
        for port in ports:
            with (log_dir / f"redis-cluster-{len(procs)}.log").open("w") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            "redis-server",
                            "--port", str(port),
                            "--bind", "127.0.0.1",
                            "--save", "",
                            "--appendonly", "no",
                            "--daemonize", "no",
                            "--dir", str(workdir),
                            "--cluster-enabled", "yes",
                            "--cluster-config-file", f"nodes-{port}.conf",
                            "--cluster-node-timeout", "2000",
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )  # fmt: skip
            clients.append(redis.Redis(host="127.0.0.1", port=port))
        deadline = time.monotonic() + 15
        for proc, client in zip(procs, clients, strict=True):
            while True:
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"cluster node did not start; see {log_dir}") from None
                    time.sleep(0.05)
        create = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
        subprocess.run(
            [*create, "--cluster-replicas", "0", "--cluster-yes"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
            timeout=60,
        )
        deadline = time.monotonic() + 60
        for client in clients:
            while True:
                info = client.cluster("info")
                if (
                    info.get("cluster_state") == "ok"
                    and int(info.get("cluster_known_nodes", 0)) == CLUSTER_MASTERS
                ):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster did not become ok: {info}")
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{ports[0]}/0", clients
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


# -- the runs ------------------------------------------------------------------------


def _quiet(max_wait_s: float, threshold_cores: float) -> float:
    """As ``bench.run.wait_until_quiet`` with shorter samples: the cores busy last."""
    from bench import run as bench

    deadline = time.monotonic() + max_wait_s
    while True:
        before = bench.machine_cpu_s()
        time.sleep(QUIET_SAMPLE_S)
        busy = (bench.machine_cpu_s() - before) / QUIET_SAMPLE_S
        if busy < threshold_cores or time.monotonic() >= deadline:
            return busy


def _reset(clients: list[redis.Redis]) -> None:
    from bench import run as bench

    for client in clients:
        bench.reset(client)


def _redis_cpu_s(clients: list[redis.Redis]) -> float:
    from bench import run as bench

    return sum(bench.redis_cpu_s(client) for client in clients)


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
    from bench import run as bench

    started = time.monotonic()
    names = [name for name in libs if name in args.scaling_libs]
    on_cluster = [
        name
        for name in names
        if name in CLUSTER_LIBS and (name == bench.SUBJECT or args.scaling_cluster_peers)
    ]
    targets = {"single": (url, [client])}
    runs: list[dict[str, Any]] = []
    retried = 0
    jobs = {
        "noop": {
            name: args.scaling_jobs if name == bench.SUBJECT else args.scaling_peer_jobs
            for name in names
        },
        "io": {name: args.scaling_io_jobs for name in names},
    }
    # which libraries run each workload
    plan = {
        workload: [
            name
            for name in names
            if workload == "noop" or name == bench.SUBJECT or args.scaling_peers_io
        ]
        for workload in args.scaling_workloads
    }
    concurrency = {"noop": args.scaling_noop_concurrency, "io": args.scaling_io_concurrency}
    with contextlib.ExitStack() as stack:
        if args.scaling_cluster and on_cluster:
            print(f"starting a Redis Cluster of {CLUSTER_MASTERS} masters ...", flush=True)
            targets["cluster"] = stack.enter_context(redis_cluster(bench.BENCH_DIR / ".venvs"))
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
                    if _quiet(wait_s, bench.QUIET_CORES) >= bench.QUIET_CORES:
                        retries = attempt  # busy all through the wait: again would not help
                    result = _run_one(
                        args, name, jobs[workload][name], concurrency[workload], workers,
                        base, *targets[target],
                    )  # fmt: skip
                    calm = result["other_cores"] <= bench.DISTURBED_CORES
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
    from bench import run as bench

    _reset(clients)
    lib = bench.LIBS[name]
    lib = dataclasses.replace(lib, extra_args=(*lib.extra_args, "--workers", str(workers)))
    t0 = time.monotonic()
    cpu0 = (bench.machine_cpu_s(), bench.children_cpu_s(), _redis_cpu_s(clients))
    # the driver names the workload its scenario; the record keeps "scaling"
    result = {**bench.run_one(lib, base["workload"], jobs, concurrency, url, args.timeout), **base}
    took = time.monotonic() - t0
    everything, ours, server = (
        bench.machine_cpu_s() - cpu0[0],
        bench.children_cpu_s() - cpu0[1],
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


# -- figures and report --------------------------------------------------------------

# key, label
METRICS = (
    ("jobs_per_s", "jobs/s"),
    ("worker_cpu_us_per_job", "worker CPU us/job (all processes)"),
    ("redis_cpu_us_per_job", "Redis CPU us/job"),
    ("peak_rss_mb", "peak RSS MB (largest process)"),
)


def _stats(runs: list[dict[str, Any]], key: str) -> dict[str, float] | None:
    values = [float(r[key]) for r in runs if "error" not in r and r.get(key) is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def _rows(scaling: dict[str, Any]) -> Iterator[tuple[str, str, str, int, list[dict[str, Any]]]]:
    """(workload, lib, target, workers, runs) in report order, for rows that ran."""
    for workload in scaling["workloads"]:
        for name in scaling["libs"]:
            for target in scaling["targets"]:
                for workers in scaling["workers"]:
                    rs = [
                        r
                        for r in scaling["runs"]
                        if (r["workload"], r["lib"], r["target"], r["workers"])
                        == (workload, name, target, workers)
                    ]
                    if rs:
                        yield workload, name, target, workers, rs


def _median(scaling: dict[str, Any], *row: str | int) -> float | None:
    """Median jobs/s of one (workload, lib, target, workers) row."""
    rs = [r for r in scaling["runs"] if (r["workload"], r["lib"], r["target"], r["workers"]) == row]
    stat = _stats(rs, "jobs_per_s")
    return stat["median"] if stat else None


def _ratio(top: float | None, bottom: float | None) -> str:
    return f"{top / bottom:.2f}x" if top and bottom else "n/a"


def _budget(report: dict[str, Any]) -> str:
    """The scaling budget the report ran with, in minutes."""
    return f"{report.get('scaling', {}).get('budget_min', 4.0):g}"


def render(report: dict[str, Any]) -> list[str]:
    """The scaling section of RESULTS.md, or a line saying it did not run."""
    from bench import run as bench

    scaling = report.get("scaling")
    if not scaling:
        return [
            "## Scaling",
            "",
            "Scaling across 1, 2 and 4 worker processes, and the same on a three-master "
            "cluster, are not part of this run (`--scenarios scaling` runs it).",
            "",
        ]
    lines: list[str] = []
    w = lines.append
    nproc = report.get("machine", {}).get("nproc", "?")
    jobs = scaling["jobs"]
    conc = scaling["concurrency"]
    workers = scaling["workers"]
    peers = [name for name in scaling["libs"] if name != bench.SUBJECT]
    w("## Scaling across worker processes")
    w("")
    w(
        f"{', '.join(map(str, workers))} worker processes per library, each at the workload's "
        f"concurrency, {scaling['repeats']} repeat(s), {scaling['elapsed_s'] / 60:.1f} minutes "
        "in all. The producer enqueues the jobs, then starts the clock when it tells every "
        "process to go; each process reports its running count (and when its latest job "
        "ended) over its stdout every 20 ms, and the clock stops at the job that brings the "
        "sum to the job count. Worker CPU is summed over the processes, peak RSS is the "
        "largest process's, Redis CPU is summed over the cluster's masters."
    )
    w("")
    plan = scaling.get("plan", {wl: scaling["libs"] for wl in scaling["workloads"]})

    def counts(workload: str) -> str:
        per_lib = jobs[workload]
        mine = per_lib.get(bench.SUBJECT)
        others = sorted({per_lib[name] for name in plan[workload] if name != bench.SUBJECT})
        if mine is not None and others == [mine]:
            return f"{mine:,} jobs per run for every library"
        text = f"{mine:,} jobs per run for aioworker" if mine is not None else ""
        if others:
            text += (", " if text else "") + "/".join(f"{n:,}" for n in others)
            text += " for the peers"
        return text

    if "noop" in plan:
        w(
            f"- noop: no-op jobs at concurrency {conc['noop']:,} per process, the CPU-bound "
            f"case: one process is already limited by the CPU it and Redis use; "
            f"{counts('noop')} (the peers run 3-12x slower per process, so the same count "
            "would take most of the bench's time)"
        )
    if "io" in plan:
        skipped = [name for name in scaling["libs"] if name not in plan["io"]]
        w(
            f"- io: jobs of `await asyncio.sleep(0.05)` at concurrency {conc['io']:,} per "
            f"process, so one process is bound by its concurrency (at most "
            f"{conc['io'] / 0.05:,.0f} jobs/s) and more processes add throughput linearly "
            f"until the CPU runs out; {counts('io')}"
            + (
                f"; {', '.join(skipped)} ran noop only (`--scaling-peers-io` adds their io runs)"
                if skipped
                else ""
            )
        )
    w(
        f"- **this machine has {nproc} cores, and Redis runs on the same cores**: on CPU-bound "
        "work 4 processes cannot beat 2, and every process also takes CPU from Redis"
    )
    on_cluster = scaling.get("on_cluster", [])
    if on_cluster:
        how = {
            bench.SUBJECT: "aioworker finds it from the URL and uses the cluster client",
            "streaq": "streaq is given the nodes (`cluster_nodes`) and a hash-tagged queue "
            "name (`{default}`: without one its enqueue fails with CROSSSLOT)",
            "taskiq": "taskiq runs taskiq-redis's `RedisStreamClusterBroker`",
            "taskiq-list": "taskiq-list runs `ListQueueClusterBroker`",
        }
        left = [name for name in CLUSTER_LIBS if name in peers and name not in on_cluster]
        w(
            f"- cluster: {CLUSTER_MASTERS} masters without replicas on this same machine, "
            f"started for the bench. {'; '.join(how[name] for name in on_cluster)}. "
            + (
                f"{' and '.join(left)} support Redis Cluster too, but ran on the single node "
                "only in this run (`--scaling-cluster-peers` adds them). "
                if left
                else ""
            )
            + (
                f"{' and '.join(unsupported)} {'has' if len(unsupported) == 1 else 'have'} "
                "no Redis Cluster support. "
                if (unsupported := [name for name in peers if name not in CLUSTER_LIBS])
                else ""
            )
            + "Each library keeps one queue, and a queue's keys share one hash slot (aioworker, "
            "streaq) or are one key (taskiq), so the work lands on one master: the cluster adds "
            "the cluster client's cost, not capacity, to this workload"
        )
    if "streaq" in peers:
        w(
            "- each streaq process takes up to twice its concurrency in jobs at once "
            "(concurrency + default prefetch), so the first process to start may take most "
            "of a run's jobs (see `jobs per process`)"
        )
    disturbed = sum(
        1
        for r in scaling["runs"]
        if "error" not in r and r.get("other_cores", 0) > bench.DISTURBED_CORES
    )
    w(
        f"- `÷ 1 process` is jobs/s at N processes ÷ jobs/s at 1 (medians; N would be "
        f"linear); as in the other scenarios, a run that other work on the machine disturbed "
        f"is run again while within the scenario's {_budget(report)}-minute budget: "
        f"{scaling.get('retried', 0)} run(s) were run again, {disturbed} kept in the figures "
        "were disturbed"
    )
    w("")
    w(
        "| workload | library | Redis | processes | "
        + " | ".join(label for _, label in METRICS)
        + " | ÷ 1 process | jobs per process |"
    )
    w("|---|---|---|---:|" + "---:|" * (len(METRICS) + 2))
    for workload, name, target, n, rs in _rows(scaling):
        ok = [r for r in rs if "error" not in r]
        cells = [bench.cell(_stats(rs, key), len(ok)) for key, _ in METRICS]
        speedup = _ratio(
            _median(scaling, workload, name, target, n),
            _median(scaling, workload, name, target, workers[0]) if workers[0] == 1 else None,
        )
        each = ok[-1].get("jobs_each", [ok[-1].get("jobs_done")]) if ok else []
        shown = "/".join(f"{x:,}" for x in each if x is not None) or "n/a"
        label = f"**{name}**" if name == bench.SUBJECT else name
        if len(ok) < len(rs):
            label += f" ({len(rs) - len(ok)} of {len(rs)} runs failed)"
        w(
            f"| {workload} | {label} | {TARGET_LABEL[target]} | {n} | "
            + " | ".join(cells)
            + f" | {speedup} | {shown} |"
        )
    w("")
    w("`jobs per process`: how the last run's jobs fell to its processes.")
    w("")
    on_cluster = scaling.get("on_cluster", [])
    if on_cluster:
        w("On the cluster ÷ on the single node, same library and process count (jobs/s medians):")
        w("")
        w(
            "| workload | library | processes | single node jobs/s | cluster jobs/s "
            "| cluster ÷ single node |"
        )
        w("|---|---|---:|---:|---:|---:|")
        for workload in scaling["workloads"]:
            for name in on_cluster:
                for n in workers:
                    single = _median(scaling, workload, name, "single", n)
                    cluster = _median(scaling, workload, name, "cluster", n)
                    label = f"**{name}**" if name == bench.SUBJECT else name
                    w(
                        f"| {workload} | {label} | {n} | "
                        f"{bench._num(single) if single else 'n/a'} | "
                        f"{bench._num(cluster) if cluster else 'n/a'} | "
                        f"{_ratio(cluster, single)} |"
                    )
        w("")
    failures = [r for r in scaling["runs"] if "error" in r]
    if failures:
        w("Scaling runs that failed (first failure of each library shown):")
        w("")
        seen: set[str] = set()
        for r in failures:
            if r["lib"] in seen:
                continue
            seen.add(r["lib"])
            w(f"- **{r['lib']}**, {r['workload']}, {TARGET_LABEL[r['target']]}, "
              f"{r['workers']} process(es):")  # fmt: skip
            w("")
            w("```")
            w(r["error"])
            w("```")
        w("")
    return lines


def print_table(report: dict[str, Any]) -> None:
    """The scaling figures on the console."""
    from bench import run as bench

    scaling = report.get("scaling")
    if not scaling:
        return
    head = f"{'workload':<9}{'library':<11}{'Redis':<9}{'procs':>6}{'jobs/s':>26}{'÷ 1':>8}"
    head += f"{'CPU us/job':>24}"
    print(head)
    print("-" * len(head))
    for workload, name, target, n, rs in _rows(scaling):
        ok = len([r for r in rs if "error" not in r])
        rate = bench.cell(_stats(rs, "jobs_per_s"), ok)
        cpu = bench.cell(_stats(rs, "worker_cpu_us_per_job"), ok)
        first = scaling["workers"][0]
        speedup = _ratio(
            _median(scaling, workload, name, target, n),
            _median(scaling, workload, name, target, first) if first == 1 else None,
        )
        print(f"{workload:<9}{name:<11}{target:<9}{n:>6}{rate:>26}{speedup:>8}{cpu:>24}")
    print()
