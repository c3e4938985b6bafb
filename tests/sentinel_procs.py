"""A primary, its replica and Redis Sentinels watching them, for the Sentinel tests.

Debian ships no ``redis-sentinel`` binary on every install: a sentinel here is
``redis-server <dir>/sentinel-<port>.conf --sentinel`` (the config file must be writable,
Sentinel rewrites it).  Every process is on a free loopback port and stopped by its PID.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis

from tests.redis_procs import HOST, RedisProcess, pick_free_port

__all__ = ("SERVICE", "SentinelGroup", "SentinelProcess")

SERVICE = "mymaster"
_START_TIMEOUT_S = 15.0


class SentinelProcess:
    """One sentinel monitoring ``SERVICE`` at ``primary_port`` (quorum given)."""

    def __init__(self, directory: Path, primary_port: int, quorum: int) -> None:
        self.directory = directory
        self.port = pick_free_port()
        self.conf = directory / f"sentinel-{self.port}.conf"
        self.conf.write_text(
            f"port {self.port}\nbind {HOST}\ndaemonize no\ndir {directory}\n"
            f"sentinel monitor {SERVICE} {HOST} {primary_port} {quorum}\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.directory / f"sentinel-{self.port}.log").open("ab")
        self._proc = subprocess.Popen(
            ["redis-server", str(self.conf), "--sentinel"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"sentinel on {self.port} exited with {self._proc.returncode}")
            try:
                if self.command("PING"):
                    return
            except redis.RedisError:
                time.sleep(0.05)
        raise RuntimeError(f"sentinel on {self.port} did not answer PING")

    def command(self, *args: str | int) -> object:
        client = redis.Redis(host=HOST, port=self.port, socket_timeout=5)
        try:
            return client.execute_command(*args)  # type: ignore[no-untyped-call]
        finally:
            client.close()

    def stop(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


class SentinelGroup:
    """A primary with one replica and ``count`` sentinels (quorum 1)."""

    def __init__(self, directory: Path, *, count: int = 1) -> None:
        self.primary = RedisProcess(directory / "primary")
        self.replica = RedisProcess(directory / "replica")
        self.directory = directory
        self.count = count
        self.sentinels: list[SentinelProcess] = []

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [(HOST, s.port) for s in self.sentinels]

    @property
    def url(self) -> str:
        hosts = ",".join(f"{h}:{p}" for h, p in self.addresses)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def primary_port(self) -> int:
        reply = self.sentinels[0].command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        assert isinstance(reply, list)
        return int(reply[1])

    def start(self) -> None:
        try:
            self.primary.start()
            self.replica.extra_args = ("--replicaof", HOST, str(self.primary.port))
            self.replica.start()
            self._wait_replica_synced()
            for _ in range(self.count):
                sentinel = SentinelProcess(self.directory, self.primary.port, quorum=1)
                self.sentinels.append(sentinel)
                sentinel.start()
            self._wait_replica_known()
        except BaseException:
            self.stop()
            raise

    def _wait_replica_synced(self) -> None:
        client = redis.Redis(host=HOST, port=self.replica.port)
        deadline = time.monotonic() + _START_TIMEOUT_S
        try:
            while time.monotonic() < deadline:
                if client.info("replication").get("master_link_status") == "up":
                    return
                time.sleep(0.05)
        finally:
            client.close()
        raise RuntimeError("the replica never synced")

    def _wait_replica_known(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if all(s.command("SENTINEL", "REPLICAS", SERVICE) for s in self.sentinels):
                return
            time.sleep(0.1)
        raise RuntimeError("the sentinels never found the replica")

    def failover(self) -> None:
        """``SENTINEL FAILOVER``: the replica becomes primary, the old primary its replica.

        Repeated while the sentinel has not yet judged the replica fit (NOGOODSLAVE).
        """
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                self.sentinels[0].command("SENTINEL", "FAILOVER", SERVICE)
                return
            except redis.ResponseError as exc:
                if "NOGOODSLAVE" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def wait_primary_moved(self, old_port: int) -> int:
        """Wait until the sentinels name a primary other than ``old_port``; its port."""
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            port = self.primary_port()
            if port != old_port:
                return port
            time.sleep(0.1)
        raise RuntimeError("the failover did not happen")

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        self.replica.stop()
        self.primary.stop()
