"""Enqueue a burst of jobs for the quick-start worker and print what happened to them.

``python -m examples.quickstart.enqueue 1000`` enqueues, ``--wait`` waits for results.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from examples.quickstart.app import resize_image, send_email, worker


async def main(count: int, wait: bool) -> None:
    async with worker:
        started = time.perf_counter()
        jobs = await worker.enqueue_many(
            [send_email.call(f"user{n}@example.com", subject="welcome") for n in range(count)]
            + [resize_image.call(n, width=400) for n in range(count)]
        )
        elapsed = time.perf_counter() - started
        print(f"enqueued {len(jobs)} jobs in {elapsed * 1000:.0f} ms")
        if wait:
            results = await asyncio.gather(*(job.result(timeout=60) for job in jobs))
            print(f"all {len(results)} done; first: {results[0]!r}; last: {results[-1]!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("count", type=int, nargs="?", default=500)
    parser.add_argument("--wait", action="store_true")
    ns = parser.parse_args()
    asyncio.run(main(ns.count, ns.wait))
