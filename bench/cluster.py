"""A throwaway Redis Cluster for the benchmark: three masters, no replicas, no persistence.

Every node is a ``redis-server`` started here on a loopback port whose cluster bus
port (port + 10000) is free too, joined with ``redis-cli --cluster create`` and
stopped by its PID afterwards; the nodes' cluster config files live in a
temporary directory removed at the end.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import redis

MASTERS = 3


def server_args(port: int) -> list[str]:
    """A ``redis-server`` on loopback ``port`` that keeps nothing on disk, in the foreground."""
    return [
        "redis-server",
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
    ]  # fmt: skip


def wait_until_up(
    proc: subprocess.Popen[bytes], client: redis.Redis, deadline: float, failure: str
) -> None:
    """Wait until a redis-server we started answers PING.

    :raises RuntimeError: with ``failure`` if it exits or the deadline passes first.
    """
    while True:
        try:
            client.ping()
            return
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(failure) from None
            time.sleep(0.05)


def _cluster_port() -> int:
    """A free port whose cluster bus port (port + 10000) is free too."""
    for _ in range(200):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a cluster node")


@contextlib.contextmanager
def redis_cluster(log_dir: Path) -> Iterator[tuple[str, list[redis.Redis]]]:
    """Start a throwaway cluster of three masters; stop every node by PID afterwards.

    :returns: the first node's URL (aioworker finds the others from it) and a
        client per master.
    """
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[redis.Redis] = []
    log_dir.mkdir(parents=True, exist_ok=True)
    try:
        ports: list[int] = []
        while len(ports) < MASTERS:
            port = _cluster_port()
            if port not in ports and port + 10000 not in ports:
                ports.append(port)
        for port in ports:
            with (log_dir / f"redis-cluster-{len(procs)}.log").open("w") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            *server_args(port),
                            "--dir", str(workdir),
                            "--cluster-enabled", "yes",
                            "--cluster-config-file", f"nodes-{port}.conf",
                            "--cluster-node-timeout", "2000",
                        ],
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                    )
                )  # fmt: skip
            clients.append(redis.Redis(host="127.0.0.1", port=port))
        deadline = time.monotonic() + 15
        for proc, client in zip(procs, clients, strict=True):
            wait_until_up(proc, client, deadline, f"cluster node did not start; see {log_dir}")
        create = ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
        subprocess.run(
            [*create, "--cluster-replicas", "0", "--cluster-yes"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=True,
            timeout=60,
        )
        deadline = time.monotonic() + 60
        for client in clients:
            while True:
                info = client.cluster("info")
                if (
                    info.get("cluster_state") == "ok"
                    and int(info.get("cluster_known_nodes", 0)) == MASTERS
                ):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the cluster did not become ok: {info}")
                time.sleep(0.1)
        yield f"redis://127.0.0.1:{ports[0]}/0", clients
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)
