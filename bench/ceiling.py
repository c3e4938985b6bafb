"""The most jobs/s one Python process pushes through redis-py on this Redis.

Each job is the least a reliable queue does: LPUSH the job, pop it (RPOP) and
acknowledge it with an INCR, all pipelined in batches (``--batch`` jobs: one
round trip of LPUSHes, then one of RPOPs and INCRs). No job bodies, no
serialisation beyond a fixed payload: a ceiling for a Python worker on this
server, not a job queue. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import redis

PAYLOAD = b'{"task":"noop","args":[],"id":"0123456789abcdef"}'


def measure(url: str, jobs: int, batch: int) -> dict[str, float]:
    client = redis.Redis.from_url(url)
    try:
        client.delete("ceiling:q", "ceiling:acked")
        started = time.perf_counter()
        for done in range(0, jobs, batch):
            n = min(batch, jobs - done)
            push = client.pipeline(transaction=False)
            for _ in range(n):
                push.lpush("ceiling:q", PAYLOAD)
            push.execute()
            work = client.pipeline(transaction=False)
            for _ in range(n):
                work.rpop("ceiling:q")
                work.incr("ceiling:acked")
            work.execute()
        elapsed = time.perf_counter() - started
        acked = int(client.get("ceiling:acked") or 0)
        if acked != jobs:
            raise RuntimeError(f"{acked} of {jobs} jobs acknowledged")
        client.delete("ceiling:q", "ceiling:acked")
    finally:
        client.close()
    return {"jobs": jobs, "batch": batch, "s": round(elapsed, 4), "jobs_per_s": jobs / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    ns = parser.parse_args()
    result = measure(ns.redis_url, ns.jobs, ns.batch)
    result["redis"] = redis.__version__
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
