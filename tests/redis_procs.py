"""Throwaway Redis servers for the test suite.

Every server runs on a loopback port picked here, keeps its files in a directory the caller owns,
and is stopped by its PID (never by name), so the machine's own Redis is left alone.

- :class:`RedisProcess` is one standalone ``redis-server``: start, stop with a chosen signal,
  restart on the same port. With ``aof=True`` every write is fsynced before it is acknowledged,
  which is what the fault tests rely on when they kill the server mid-run.
- :class:`RedisCluster` is three such processes joined into a cluster of three masters
  without replicas.

The server binary is ``$AIOWORKER_REDIS_SERVER`` (default ``redis-server``) and the CLI
``$AIOWORKER_REDIS_CLI`` (default ``redis-cli``), so the same suite runs against another Redis
or Valkey build (``make test-matrix``). Every test that starts a server or runs the CLI takes
them from :func:`server_binary` and :func:`cli_binary`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import redis

__all__ = (
    "CLUSTER_BUS_OFFSET",
    "CLUSTER_SLOTS",
    "MAX_CLUSTER_PORT",
    "RedisCluster",
    "RedisFactory",
    "RedisProcess",
    "cli_binary",
    "missing_binaries",
    "node_command",
    "pick_free_port",
    "server_binary",
)

HOST = "127.0.0.1"
CLUSTER_SLOTS = 16384
# A cluster node also listens on port + 10000 for its bus, and that must stay a valid port.
CLUSTER_BUS_OFFSET = 10000
MAX_CLUSTER_PORT = 65535 - CLUSTER_BUS_OFFSET - 1

_START_TIMEOUT_S = 15.0
_STOP_TIMEOUT_S = 10.0
_CLUSTER_TIMEOUT_S = 60.0

# Ports already handed out in this process, so fixtures set up one after another never get the
# same port even if the first server has not bound it yet.
_handed_out: set[int] = set()
_port_lock = threading.Lock()
# Servers still running; stopped at interpreter exit if a test run is torn down abruptly.
_live: set[RedisProcess] = set()


def server_binary() -> str:
    """The Redis server executable the tests start: ``$AIOWORKER_REDIS_SERVER`` or ``redis-server``.

    :returns: a name looked up on ``PATH`` or a path.
    """
    return os.environ.get("AIOWORKER_REDIS_SERVER", "").strip() or "redis-server"


def cli_binary() -> str:
    """The Redis CLI the tests run: ``$AIOWORKER_REDIS_CLI`` or ``redis-cli``.

    :returns: a name looked up on ``PATH`` or a path.
    """
    return os.environ.get("AIOWORKER_REDIS_CLI", "").strip() or "redis-cli"


def missing_binaries(*names: str) -> list[str]:
    """Name the executables that are not on ``PATH`` (or, given as paths, not executable).

    :param names: executable names or paths, e.g. ``server_binary()``.
    :returns: the names that were not found, in the order given.
    """
    return [name for name in names if shutil.which(name) is None]


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def pick_free_port(*, cluster_bus: bool = False) -> int:
    """Pick a loopback port that is free now and was not handed out before in this process.

    :param cluster_bus: also require ``port + 10000`` to be free and the port to be at most
        :data:`MAX_CLUSTER_PORT`, as a cluster node needs.
    :returns: the port.
    :raises RuntimeError: if no such port was found.
    """
    with _port_lock:
        for attempt in range(500):
            if attempt % 2 == 0:
                # Let the kernel choose: it never returns a port that is in use.
                with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                    sock.bind((HOST, 0))
                    port: int = sock.getsockname()[1]
            else:
                # The kernel's ephemeral range may lie mostly above MAX_CLUSTER_PORT.
                port = random.randint(20000, MAX_CLUSTER_PORT)
                if not _port_is_free(port):
                    continue
            if port in _handed_out:
                continue
            if cluster_bus and (
                port > MAX_CLUSTER_PORT
                or port + CLUSTER_BUS_OFFSET in _handed_out
                or not _port_is_free(port + CLUSTER_BUS_OFFSET)
            ):
                continue
            _handed_out.add(port)
            if cluster_bus:
                _handed_out.add(port + CLUSTER_BUS_OFFSET)
            return port
    raise RuntimeError("no free loopback port found")


def _ping(port: int) -> bool:
    client = redis.Redis(host=HOST, port=port, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return client.ping()
    except (redis.ConnectionError, redis.TimeoutError):
        # BusyLoadingError (the server is still reading its AOF) is a ConnectionError too.
        return False
    finally:
        client.close()


class RedisProcess:
    """One ``redis-server`` on a fixed loopback port.

    The port is chosen on construction (or given) and kept across :meth:`restart`, so clients
    holding :attr:`url` reconnect to the same server.

    :param directory: where the server keeps its log, AOF and cluster config.
    :param port: the port to listen on; a free one is picked when ``None``.
    :param aof: turn on the append-only file with ``appendfsync always``.
    :param extra_args: more ``redis-server`` arguments, e.g. the cluster options.
    :param cluster_bus: when picking a port, also keep ``port + 10000`` free.
    """

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        aof: bool = False,
        extra_args: Sequence[str] = (),
        cluster_bus: bool = False,
    ) -> None:
        self.directory = directory
        self.aof = aof
        self.extra_args = tuple(extra_args)
        self._cluster_bus = cluster_bus
        self._port_given = port is not None
        self.port = port if port is not None else pick_free_port(cluster_bus=cluster_bus)
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"RedisProcess(port={self.port}, pid={self.pid}, aof={self.aof})"

    @property
    def url(self) -> str:
        """The ``redis://`` URL of database 0 on this server."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's PID while it runs, else ``None``."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def log_path(self) -> Path:
        """The file the server's stdout and stderr go to (appended to on every start)."""
        return self.directory / f"redis-{self.port}.log"

    def log(self) -> str:
        """Read the server's log so far.

        :returns: the log text, or ``""`` if the server never started.
        """
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def argv(self) -> list[str]:
        """Build the ``redis-server`` command line for the current port.

        :returns: the argument list.
        """
        args = [
            server_binary(),
            "--port",
            str(self.port),
            "--bind",
            HOST,
            "--save",
            "",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
        ]
        if self.aof:
            args += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            args += ["--appendonly", "no"]
        return [*args, *self.extra_args]

    def start(self) -> None:
        """Start the server and wait until it answers PING.

        A port that was picked here is re-picked if another process took it meanwhile.

        :raises RuntimeError: if the server is already running, or exits or does not answer
            within the start timeout.
        """
        if self.pid is not None:
            raise RuntimeError(f"{self!r} is already running")
        attempts = 1 if self._port_given else 5
        for attempt in range(attempts):
            try:
                self._start_once()
                return
            except RuntimeError:
                if attempt == attempts - 1 or "already in use" not in self.log():
                    raise
                self.port = pick_free_port(cluster_bus=self._cluster_bus)

    def _start_once(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Keep Ctrl-C in the terminal from killing servers before teardown stops them.
                start_new_session=True,
            )
        _live.add(self)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            code = self._proc.poll()
            if code is not None:
                _live.discard(self)
                raise RuntimeError(
                    f"redis-server on port {self.port} exited with {code}:\n{self.log()}"
                )
            if _ping(self.port):
                return
            time.sleep(0.02)
        self.stop(signal.SIGKILL)
        raise RuntimeError(f"redis-server on port {self.port} did not answer PING:\n{self.log()}")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the server by its PID and wait for it to exit.

        ``SIGTERM`` lets the server shut down cleanly; ``SIGKILL`` simulates a crash. If the
        server outlives the stop timeout after ``SIGTERM``, it is killed.

        :param sig: the signal to send first.
        """
        proc = self._proc
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.send_signal(sig)
                try:
                    proc.wait(timeout=_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=_STOP_TIMEOUT_S)
        finally:
            _live.discard(self)

    def restart(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Stop the server with ``sig`` and start it again on the same port.

        :param sig: the signal to stop it with.
        """
        self.stop(sig)
        self.start()


class RedisCluster:
    """Masters (three by default) and their replicas, each a :class:`RedisProcess` with
    cluster mode on. Without replicas the cluster is three masters only; the helpers for
    replicas, failover and slot migration are in ``tests/redis_topologies.py``.

    :param directory: where the nodes keep logs and ``nodes-<port>.conf`` files.
    :param size: how many masters.
    :param replicas: how many replicas per master (``redis-cli --cluster create`` picks
        which node replicates which).
    """

    def __init__(self, directory: Path, *, size: int = 3, replicas: int = 0) -> None:
        self.directory = directory
        self.masters = size
        self.replicas = replicas
        self.nodes: list[RedisProcess] = []
        for _ in range(size * (1 + replicas)):
            port = pick_free_port(cluster_bus=True)
            extra = [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(directory / f"nodes-{port}.conf"),
                "--cluster-node-timeout",
                "2000",
            ]
            self.nodes.append(RedisProcess(directory, port=port, extra_args=extra))

    @property
    def url(self) -> str:
        """The URL of the first node, which a cluster client uses as its startup node."""
        return self.nodes[0].url

    @property
    def ports(self) -> list[int]:
        """The node ports, in creation order."""
        return [node.port for node in self.nodes]

    def start(self) -> None:
        """Start the nodes, assign all slots, and wait until every node reports the cluster ok.

        :raises RuntimeError: if ``redis-cli --cluster create`` fails or the cluster does not
            settle in time.
        """
        try:
            for node in self.nodes:
                node.start()
            self._create()
            self._wait_until_ok()
        except BaseException:
            self.stop()
            raise

    def _create(self) -> None:
        cmd = [
            cli_binary(),
            "--cluster",
            "create",
            *(f"{HOST}:{port}" for port in self.ports),
            "--cluster-replicas",
            str(self.replicas),
            "--cluster-yes",
        ]
        result = subprocess.run(
            cmd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_CLUSTER_TIMEOUT_S,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(cmd)} exited with {result.returncode}:\n{result.stdout}{result.stderr}"
            )

    def _wait_until_ok(self) -> None:
        deadline = time.monotonic() + _CLUSTER_TIMEOUT_S
        want = {
            "cluster_state": "ok",
            "cluster_slots_assigned": str(CLUSTER_SLOTS),
            "cluster_known_nodes": str(len(self.nodes)),
        }
        pending = list(self.nodes)
        last: dict[str, str] = {}
        while pending and time.monotonic() < deadline:
            last = _cluster_info(pending[0].port)
            if all(last.get(key) == value for key, value in want.items()):
                pending.pop(0)
            else:
                time.sleep(0.1)
        if pending:
            raise RuntimeError(f"cluster node {pending[0].port} never became ok: {last}")
        if self.replicas:
            self._wait_until_replicas_synced(deadline)

    def _wait_until_replicas_synced(self, deadline: float) -> None:
        linked = 0
        while time.monotonic() < deadline:
            linked = sum(
                node_command(node.port, "INFO", "replication").get("master_link_status") == "up"
                for node in self.nodes
            )
            if linked == self.masters * self.replicas:
                return
            time.sleep(0.1)
        raise RuntimeError(f"only {linked} cluster replicas linked to their master")

    def stop(self) -> None:
        """Stop every node by its PID."""
        for node in self.nodes:
            node.stop()


def node_command(port: int, *args: str | int) -> Any:
    """Send one command to the server on ``port`` over a short-lived connection.

    redis-py parses the replies of some commands; a two-word command sent as separate words
    (``"CLUSTER", "SLOTS"``) escapes that and comes back in the server's own shape.

    :param port: the server's loopback port.
    :param args: the command and its arguments.
    :returns: the reply, bytes not decoded.
    :raises redis.RedisError: if the command fails.
    """
    client = redis.Redis(host=HOST, port=port, socket_connect_timeout=2, socket_timeout=5)
    try:
        return client.execute_command(*args)  # type: ignore[no-untyped-call]
    finally:
        client.close()


def _cluster_info(port: int) -> dict[str, str]:
    try:
        raw = node_command(port, "CLUSTER", "INFO")
    except (redis.ConnectionError, redis.TimeoutError):
        return {}
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    info: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            info[key.strip()] = value.strip()
    return info


class RedisFactory(Protocol):
    """Starts a :class:`RedisProcess` owned by the current test (the ``redis_factory`` fixture)."""

    def __call__(self, *, aof: bool = ...) -> RedisProcess: ...


@atexit.register
def _stop_leftovers() -> None:
    for proc in list(_live):
        with contextlib.suppress(Exception):
            proc.stop(signal.SIGKILL)
