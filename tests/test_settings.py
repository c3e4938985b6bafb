"""``Worker.settings``: a frozen snapshot of the configuration the run loop and features read."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from aioworker import Worker


def test_settings_snapshot_carries_the_workers_values_in_redis_units() -> None:
    w = Worker(
        "redis://u:secret@localhost:1/0",
        queues={"a": 5, "b": 2},
        lease_timeout=8,
        result_ttl=timedelta(minutes=2),
        dead_max=7,
        global_concurrency={"a": 3},
    )
    s = w.settings
    assert s.lease_ms == 8000
    assert s.heartbeat_s == 2.0
    assert s.result_ttl_ms == 120_000
    assert s.dead_max == 7
    assert dict(s.queues) == {"a": 5, "b": 2}
    assert dict(s.global_concurrency) == {"a": 3}
    assert "secret" not in s.safe_url


def test_settings_is_frozen_and_a_later_change_shows_in_the_next_snapshot() -> None:
    w = Worker()
    before = w.settings
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.dead_max = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        before.queues["x"] = 1  # type: ignore[index]
    w.metrics_port = 9100  # what the CLI does with --metrics-port before a run
    assert before.metrics_port is None
    assert w.settings.metrics_port == 9100
