"""Retry delays (aioworker.Backoff)."""

from __future__ import annotations

import pytest

from aioworker import Backoff


def test_without_jitter_delays_grow_exponentially() -> None:
    b = Backoff(base_s=0.5, factor=2.0, cap_s=300, jitter=False)
    assert [b.delay_s(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_other_factors() -> None:
    triple = Backoff(base_s=1, factor=3, jitter=False)
    assert [triple.delay_s(n) for n in (1, 2, 3)] == [1, 3, 9]
    constant = Backoff(base_s=2, factor=1, jitter=False)
    assert {constant.delay_s(n) for n in range(1, 20)} == {2}


def test_cap_bounds_the_delay() -> None:
    b = Backoff(base_s=1, factor=2, cap_s=5, jitter=False)
    assert [b.delay_s(n) for n in range(1, 7)] == [1, 2, 4, 5, 5, 5]


def test_huge_retry_numbers_stay_at_the_cap() -> None:
    b = Backoff(base_s=1, factor=10, cap_s=60, jitter=False)
    assert b.delay_s(10_000) == 60
    assert b.delay_s(10**9) == 60


def test_retry_numbers_below_one_use_the_base() -> None:
    b = Backoff(base_s=0.25, jitter=False)
    assert b.delay_s(0) == 0.25
    assert b.delay_s(-5) == 0.25


def test_zero_base_never_waits() -> None:
    b = Backoff(base_s=0, jitter=False)
    assert [b.delay_s(n) for n in range(1, 5)] == [0, 0, 0, 0]


def test_jitter_draws_from_the_upper_half() -> None:
    b = Backoff(base_s=1, factor=2, cap_s=300, jitter=True)
    for n, full in ((1, 1.0), (3, 4.0), (20, 300.0)):
        samples = [b.delay_s(n) for _ in range(500)]
        assert all(full / 2 <= s <= full for s in samples), (n, min(samples), max(samples))
        # spread out, not a constant: some in each quarter of the range
        assert any(s < full * 0.75 for s in samples)
        assert any(s > full * 0.75 for s in samples)


def test_jitter_is_on_by_default() -> None:
    b = Backoff()
    assert b.jitter is True
    assert b.base_s == 1.0
    assert len({b.delay_s(1) for _ in range(50)}) > 1


@pytest.mark.parametrize(
    "kwargs",
    [{"base_s": -1}, {"cap_s": -0.1}, {"factor": 0.5}],
)
def test_invalid_settings_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(**kwargs)  # type: ignore[arg-type]
