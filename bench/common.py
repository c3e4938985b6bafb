"""What the side-by-side bench (``bench/run.py``) and its scaling scenario
(``bench/scaling.py``, ``bench/scaling_report.py``) share: where things are, the
benchmarked libraries, one run of a library in a fresh process, CPU counters, and how
a figure is written in a table.

It imports no other bench module but ``peers``, so the three can import it at the top
without importing each other.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from bench import peers

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
LIBS_DIR = BENCH_DIR / "libs"

SUBJECT = "aioworker"
# Before each run, wait (up to --quiet-wait) until other work uses less than this.
QUIET_CORES = 0.25
# A run during which other work used more than this is run again (up to --retries).
DISTURBED_CORES = 0.3


@dataclass(frozen=True)
class Lib:
    """One benchmarked library: its script, its virtualenv and extra arguments."""

    name: str
    script: str
    peer: str | None  # name of the peer virtualenv; None for this project's interpreter
    extra_args: tuple[str, ...] = ()

    def python(self) -> Path:
        return peers.venv_python(self.peer or self.name)


LIBS: dict[str, Lib] = {
    lib.name: lib
    for lib in (
        # its own virtualenv too, with its runtime dependencies only
        Lib("aioworker", "aioworker_bench.py", None),
        Lib("arq", "arq_bench.py", "arq"),
        Lib("saq", "saq_bench.py", "saq"),
        Lib("streaq", "streaq_bench.py", "streaq"),
        Lib("taskiq", "taskiq_bench.py", "taskiq"),
        Lib("taskiq-list", "taskiq_bench.py", "taskiq", ("--variant", "list")),
    )
}


# -- the private Redis server --------------------------------------------------------


def reset(client: redis.Redis) -> None:
    """Empty the private server: data, cached scripts and loaded functions."""
    client.flushall()
    client.script_flush()
    client.function_flush()


def redis_cpu_s(client: redis.Redis) -> float:
    """CPU seconds the private server has used so far (main thread and children)."""
    cpu = client.info("cpu")
    return float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


# -- other work on the machine -------------------------------------------------------


def machine_cpu_s() -> float:
    """Busy CPU seconds of the whole machine so far, all cores (from /proc/stat)."""
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def children_cpu_s() -> float:
    """CPU seconds of this process's finished children and their waited-for children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- one run -------------------------------------------------------------------------


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def run_one(
    lib: Lib,
    scenario: str,
    jobs: int,
    concurrency: int,
    url: str,
    timeout_s: float,
    pythonpath: Path | None = None,
) -> dict[str, Any]:
    """Run one library x scenario in a fresh process; never raises for a failed run."""
    cmd = [
        str(lib.python()),
        str(LIBS_DIR / lib.script),
        "--scenario", scenario,
        "--jobs", str(jobs),
        "--concurrency", str(concurrency),
        "--redis-url", url,
        # the worker gives up a little before the hard limit, so it can still report
        "--timeout", str(max(30.0, timeout_s - 60)),
        *lib.extra_args,
    ]  # fmt: skip
    base: dict[str, Any] = {"lib": lib.name, "scenario": scenario, "jobs": jobs}
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group, so a hung run is killed whole
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return {**base, "error": f"timed out after {timeout_s:.0f} s\n{tail(err)}"}
    finally:
        # a worker child left behind by a crashed producer goes with its group
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    result: dict[str, Any] | None = None
    for line in reversed(out.strip().splitlines()):
        with contextlib.suppress(ValueError):
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                result = parsed
                break
    if result is None:
        return {**base, "error": f"exit status {proc.returncode}, no result\n{tail(err)}"}
    if "error" in result and err.strip():
        result["error"] += "\n--- stderr ---\n" + tail(err)
    return {**base, **result}


# -- figures -------------------------------------------------------------------------


def num(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def cell(stat: dict[str, float] | None, runs: int) -> str:
    if stat is None:
        return "failed"
    if runs <= 1 or stat["min"] == stat["max"]:
        return num(stat["median"])
    return f"{num(stat['median'])} ({num(stat['min'])}-{num(stat['max'])})"
