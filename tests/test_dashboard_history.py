"""The dashboard's chart history: one sample per interval, a bounded ring, queues that
appear later read 0 before they existed."""

from __future__ import annotations

from datetime import UTC, datetime

from aioworker.dashboard.history import History
from aioworker.inspect import QueueStats, WorkerInfo


def stats(name: str, ready: int, running: int = 0) -> QueueStats:
    return QueueStats(name, ready, 1, running, 2, False, None, 0, 0, 0)


def worker(rate: float) -> WorkerInfo:
    now = datetime.now(UTC)
    return WorkerInfo("w", "host", 1, {"default": 10}, None, "running", now, 1.0, 0.1, 5, 0, rate)


def test_samples_at_most_once_per_interval_and_sums_the_workers_rates() -> None:
    h = History(size=10, min_interval_s=1.0)
    assert h.add([stats("a", 3, 1), stats("b", 4)], [worker(2.5), worker(1.5)], now_s=100.0)
    assert h.add([stats("a", 9)], [], now_s=100.5) is None  # too soon: not kept
    assert h.add([stats("a", 5)], [], now_s=101.0)

    data = h.to_json()

    assert data["t"] == [100_000, 101_000]
    assert data["jobs_per_s"] == [4.0, 0.0]
    assert data["ready"] == [7, 5]
    assert data["scheduled"] == [2, 1]
    assert data["running"] == [1, 0]
    assert data["queues"] == {
        "a": {"ready": [3, 5], "running": [1, 0]},
        "b": {"ready": [4, 0], "running": [0, 0]},  # gone from the second sample
    }


def test_keeps_the_last_samples_and_fewer_per_queue() -> None:
    h = History(size=5, min_interval_s=1.0)
    for i in range(8):
        h.add([stats("a", i)] + ([stats("late", 10 * i)] if i >= 6 else []), [], now_s=i)

    data = h.to_json(per_queue=3)

    assert data["ready"] == [3, 4, 5, 6 + 60, 7 + 70]
    assert data["queues"]["a"]["ready"] == [5, 6, 7]
    assert data["queues"]["late"]["ready"] == [0, 60, 70]
