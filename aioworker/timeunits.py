"""Conversion between the public API's seconds and Redis' integer milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

__all__ = ("Seconds", "datetime_to_ms", "ms_to_datetime", "to_ms", "to_seconds")

Seconds = float | timedelta


def to_seconds(value: Seconds) -> float:
    """Seconds as a float from a number or a timedelta.

    :raises ValueError: for a negative duration.
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 0:
        raise ValueError(f"duration must not be negative, got {value!r}")
    return seconds


def to_ms(value: Seconds) -> int:
    """Whole milliseconds from seconds or a timedelta (rounded up, so 0.0001 s is 1 ms)."""
    seconds = to_seconds(value)
    ms = int(seconds * 1000)
    return ms + 1 if ms < seconds * 1000 else ms


def datetime_to_ms(value: datetime) -> int:
    """Epoch milliseconds of an aware datetime (a naive one is taken as local time)."""
    return int(value.timestamp() * 1000)


def ms_to_datetime(ms: int) -> datetime:
    """An aware UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC)
