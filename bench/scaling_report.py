"""Figures and report section of the scaling scenario (``bench/scaling.py``).

Reads the ``scaling`` part of ``RESULTS.json``: medians with min-max per
workload, library, Redis target and process count; jobs/s at N processes over
jobs/s at 1; and each library's jobs/s on the cluster over the single node's.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from typing import Any

from bench.cluster import MASTERS
from bench.common import DISTURBED_CORES, SUBJECT, cell, num

# the libraries that have a Redis Cluster client (arq and saq do not)
CLUSTER_LIBS = ("aioworker", "streaq", "taskiq", "taskiq-list")
TARGET_LABEL = {"single": "single node", "cluster": f"cluster ({MASTERS} masters)"}

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
    peers = [name for name in scaling["libs"] if name != SUBJECT]
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
        mine = per_lib.get(SUBJECT)
        others = sorted({per_lib[name] for name in plan[workload] if name != SUBJECT})
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
            SUBJECT: "aioworker finds it from the URL and uses the cluster client",
            "streaq": "streaq is given the nodes (`cluster_nodes`) and a hash-tagged queue "
            "name (`{default}`: without one its enqueue fails with CROSSSLOT)",
            "taskiq": "taskiq runs taskiq-redis's `RedisStreamClusterBroker`",
            "taskiq-list": "taskiq-list runs `ListQueueClusterBroker`",
        }
        left = [name for name in CLUSTER_LIBS if name in peers and name not in on_cluster]
        w(
            f"- cluster: {MASTERS} masters without replicas on this same machine, "
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
        1 for r in scaling["runs"] if "error" not in r and r.get("other_cores", 0) > DISTURBED_CORES
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
        cells = [cell(_stats(rs, key), len(ok)) for key, _ in METRICS]
        speedup = _ratio(
            _median(scaling, workload, name, target, n),
            _median(scaling, workload, name, target, workers[0]) if workers[0] == 1 else None,
        )
        each = ok[-1].get("jobs_each", [ok[-1].get("jobs_done")]) if ok else []
        shown = "/".join(f"{x:,}" for x in each if x is not None) or "n/a"
        label = f"**{name}**" if name == SUBJECT else name
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
                    label = f"**{name}**" if name == SUBJECT else name
                    w(
                        f"| {workload} | {label} | {n} | "
                        f"{num(single) if single else 'n/a'} | "
                        f"{num(cluster) if cluster else 'n/a'} | "
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
    scaling = report.get("scaling")
    if not scaling:
        return
    head = f"{'workload':<9}{'library':<11}{'Redis':<9}{'procs':>6}{'jobs/s':>26}{'÷ 1':>8}"
    head += f"{'CPU us/job':>24}"
    print(head)
    print("-" * len(head))
    for workload, name, target, n, rs in _rows(scaling):
        ok = len([r for r in rs if "error" not in r])
        rate = cell(_stats(rs, "jobs_per_s"), ok)
        cpu = cell(_stats(rs, "worker_cpu_us_per_job"), ok)
        first = scaling["workers"][0]
        speedup = _ratio(
            _median(scaling, workload, name, target, n),
            _median(scaling, workload, name, target, first) if first == 1 else None,
        )
        print(f"{workload:<9}{name:<11}{target:<9}{n:>6}{rate:>26}{speedup:>8}{cpu:>24}")
    print()
