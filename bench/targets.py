"""The report's section on the performance targets, and the notes on what each
optimisation bought (``bench/OPTIMISATIONS.md``, written by hand, included as it is).

The targets compare aioworker's medians from the same report with absolute figures
measured for libraries in other languages on a 2-core machine of the same class
(BullMQ and Sidekiq do not run in this bench), and with fixed goals.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

OPTIMISATIONS = Path(__file__).resolve().parent / "OPTIMISATIONS.md"

# scenario, metric key, label, goal, whether higher is better, where the goal comes from
TARGETS = (
    ("noop", "jobs_per_s", "no-op jobs/s", 9_170.0, True, "BullMQ 6.7"),
    ("io", "jobs_per_s", "50 ms I/O jobs/s at 1,000", 7_700.0, True, "BullMQ 6.7"),
    ("noop", "enqueue_per_s", "bulk enqueue jobs/s", 50_000.0, True, "goal"),
    ("pickup", "pickup_p50_ms", "pickup p50 ms (idle worker)", 0.5, False, "goal"),
    ("pickup", "pickup_p99_ms", "pickup p99 ms (idle worker)", 2.0, False, "goal"),
    ("io", "peak_rss_mb", "peak RSS MB, 1,000 in flight", 45.0, False, "goal"),
    ("inflight", "peak_rss_mb", "peak RSS MB, 10,000 in flight", 150.0, False, "goal"),
    ("noop", "round_trips_per_job", "Redis round trips per job", 1.0, False, "goal"),
)

Stat = dict[str, float] | None


def render(summary: Callable[[str, str], Stat], fmt: Callable[[float], str]) -> list[str]:
    """Lines of the targets section and the optimisation notes.

    :param summary: (scenario, metric key) -> aioworker's median/min/max, or None.
    :param fmt: how the report formats a number.
    """
    lines = ["## Against the targets", ""]
    lines.append(
        "aioworker's medians from this run (min-max in brackets) against the goals of the "
        "performance work; the BullMQ figures are absolute ones measured on a 2-core machine "
        "of the same class (it is not run here), so their ratio is indicative."
    )
    lines += [
        "",
        "| metric | aioworker | target | source | ratio | met |",
        "|---|---:|---:|---|---:|---|",
    ]
    for scenario, key, label, goal, higher, source in TARGETS:
        stat = summary(scenario, key)
        if stat is None:
            lines.append(f"| {label} | not run | {fmt(goal)} | {source} | | |")
            continue
        median = stat["median"]
        met = median >= goal if higher else median <= goal
        shown = fmt(median)
        if stat["min"] != stat["max"]:
            shown += f" ({fmt(stat['min'])}-{fmt(stat['max'])})"
        ratio = f"{median / goal:.2f}x"
        lines.append(
            f"| {label} | {shown} | {fmt(goal)} | {source} | {ratio} | {'yes' if met else 'no'} |"
        )
    lines.append("")
    if OPTIMISATIONS.exists():
        lines += OPTIMISATIONS.read_text().rstrip().splitlines()
        lines.append("")
    return lines


def as_summary(
    summaries: dict[tuple[str, str], dict[str, Any]], subject: str
) -> Callable[[str, str], Stat]:
    """A lookup of the subject's figures in the report's summaries."""

    def summary(scenario: str, key: str) -> Stat:
        stat = summaries.get((subject, scenario), {}).get(key)
        return stat if isinstance(stat, dict) else None

    return summary
