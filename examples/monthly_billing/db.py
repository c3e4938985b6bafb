"""A simulated I/O-bound database and payment provider, made of sleeps.

Every call costs what a round trip to a real database would (a few milliseconds), and
each worker process has a pool of ``POOL_SIZE`` connections, like a real driver, so
running more jobs at once than the pool holds only makes them wait for a connection.
Writes are upserts keyed by ``(company, month, line)``: running one twice stores the
same thing, which is what makes the billing steps safe to re-run.

Company data is derived from the company id, so every process sees the same "database".
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass

__all__ = ("POOL_SIZE", "Declined", "FakeDatabase", "UsageRow")

POOL_SIZE = 50
ROUND_TRIP_S = 0.002  # one query
ROW_S = 0.00001  # per row read or written
CHARGE_S = 0.008  # the payment provider's API


class Declined(Exception):
    """The payment provider declined the company's card."""


@dataclass(frozen=True, slots=True)
class UsageRow:
    id: int
    cents: int


class FakeDatabase:
    """The billing database of one worker process.

    :param declined: company ids whose card the payment provider declines.
    """

    def __init__(self, declined: frozenset[int] = frozenset()) -> None:
        self.declined = declined
        self._pool = asyncio.Semaphore(POOL_SIZE)

    async def _io(self, seconds: float) -> None:
        async with self._pool:
            await asyncio.sleep(seconds)

    @staticmethod
    def rows_of(company_id: int) -> int:
        """How many usage rows the company has this month (100 to 400)."""
        return random.Random(company_id).randrange(100, 401)

    async def usage_after(
        self, company_id: int, after: int | None, chunk: int = 100
    ) -> AsyncIterator[list[UsageRow]]:
        """The company's usage rows after row ``after``, ``chunk`` rows per query."""
        n = self.rows_of(company_id)
        start = 0 if after is None else after + 1
        for first in range(start, n, chunk):
            last = min(first + chunk, n)
            await self._io(ROUND_TRIP_S + ROW_S * (last - first))
            yield [UsageRow(i, 1 + (company_id * 7 + i) % 50) for i in range(first, last)]

    async def upsert_invoice_lines(self, company_id: int, month: str, rows: list[UsageRow]) -> None:
        """One bulk upsert of invoice lines."""
        await self._io(ROUND_TRIP_S * 2 + ROW_S * len(rows))

    async def invoice_total(self, company_id: int, month: str) -> int:
        """The invoice's total in cents (an aggregate query)."""
        await self._io(ROUND_TRIP_S)
        return sum(1 + (company_id * 7 + i) % 50 for i in range(self.rows_of(company_id)))

    async def charge(self, company_id: int, month: str, cents: int) -> str:
        """Charge the company's card (idempotent per company and month at the provider).

        :raises Declined: for companies whose card is declined.
        """
        await asyncio.sleep(CHARGE_S)
        if company_id in self.declined:
            raise Declined(f"card of company {company_id} declined ({cents} cents)")
        return f"ch_{month}_{company_id}"

    async def mark_billed(self, company_id: int, month: str, charge_id: str) -> None:
        """Record the invoice as paid."""
        await self._io(ROUND_TRIP_S)
