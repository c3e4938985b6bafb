"""``Host``: what a feature wired at :class:`~aioworker.worker.Worker` construction may reach.

Features (unique locks, limit gates, groups, batches, leadership, periodic jobs) are built
before anything connects, so they take this narrow view of their host instead of the Worker:
the producer client, built lazily on first use, and the current settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .client import Client
    from .settings import Settings

__all__ = ("Host",)


class Host(Protocol):
    """The producer client and settings of a worker, read when a feature needs them."""

    @property
    def client(self) -> Client: ...

    @property
    def settings(self) -> Settings: ...
