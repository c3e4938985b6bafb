"""Retry delays: exponential backoff with jitter and a cap."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ("Backoff",)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry ``n`` (1-based): ``min(cap_s, base_s * factor ** (n - 1))``.

    With ``jitter`` the delay is drawn uniformly from its upper half, so retries of many
    jobs that failed together spread out instead of hitting a recovering service at once.
    """

    base_s: float = 1.0
    factor: float = 2.0
    cap_s: float = 300.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < 0 or self.factor < 1:
            raise ValueError("backoff needs base_s >= 0, cap_s >= 0 and factor >= 1")

    def delay_s(self, retry_number: int) -> float:
        """Seconds to wait before retry number ``retry_number`` (1 for the first retry)."""
        exponent = min(max(retry_number - 1, 0), 64)
        delay = min(self.cap_s, self.base_s * self.factor**exponent)
        if self.jitter:
            delay = delay / 2 + random.uniform(0, delay / 2)
        return delay
