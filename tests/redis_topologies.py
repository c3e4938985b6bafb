"""A cluster with replicas, and the topology changes the fault tests make on it.

:class:`ReplicatedCluster` is a :class:`~tests.redis_procs.RedisCluster` of three masters with
one replica each (six nodes) plus what a test needs to move a queue's slot around while
workers run: which master holds a key's slot, which node replicates a master, a
``CLUSTER FAILOVER`` that waits until every node agrees on the new master, and the migration
of one slot to another master (``SETSLOT IMPORTING/MIGRATING``, ``MIGRATE ... KEYS`` in
batches, ``SETSLOT NODE`` on every master), the steps ``redis-cli --cluster reshard`` takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from redis.crc import key_slot

from tests.redis_procs import HOST, RedisCluster, RedisProcess, node_command

__all__ = ("ClusterNode", "ReplicatedCluster")

_SETTLE_TIMEOUT_S = 30.0


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class ClusterNode:
    """One line of ``CLUSTER NODES`` as one node sees it."""

    node_id: str
    port: int
    is_master: bool
    master_id: str | None
    slots: frozenset[int]


def cluster_nodes(port: int) -> list[ClusterNode]:
    """The cluster as the node on ``port`` sees it (``CLUSTER NODES``).

    Slots being migrated (``[slot->-id]`` entries) are left out.
    """
    nodes: list[ClusterNode] = []
    for line in _text(node_command(port, "CLUSTER", "NODES")).splitlines():
        words = line.split()
        if len(words) < 8:
            continue
        flags = words[2].split(",")
        slots: set[int] = set()
        for word in words[8:]:
            if word.startswith("["):
                continue
            first, _, last = word.partition("-")
            slots.update(range(int(first), int(last or first) + 1))
        nodes.append(
            ClusterNode(
                node_id=words[0],
                port=int(words[1].split("@")[0].rsplit(":", 1)[1]),
                is_master="master" in flags,
                master_id=None if words[3] == "-" else words[3],
                slots=frozenset(slots),
            )
        )
    return nodes


class ReplicatedCluster(RedisCluster):
    """Masters with replicas (three and one by default) and the topology operations on them.

    :param directory: where the nodes keep logs and config files.
    :param masters: how many masters.
    :param replicas: replicas per master.
    """

    def __init__(self, directory: Path, *, masters: int = 3, replicas: int = 1) -> None:
        super().__init__(directory, size=masters, replicas=replicas)

    def node(self, port: int) -> RedisProcess:
        """The node listening on ``port``."""
        for node in self.nodes:
            if node.port == port:
                return node
        raise KeyError(port)

    def _view(self) -> list[ClusterNode]:
        for node in self.nodes:
            if node.pid is not None:
                return cluster_nodes(node.port)
        raise RuntimeError("no cluster node is running")

    def master_ports(self) -> list[int]:
        """The ports of the masters that serve slots now."""
        return sorted(n.port for n in self._view() if n.is_master and n.slots)

    def owner_of_slot(self, slot: int) -> int:
        """The port of the master serving ``slot``, as every running node agrees."""
        owners = set()
        for node in self.nodes:
            if node.pid is None:
                continue
            owners |= {n.port for n in cluster_nodes(node.port) if slot in n.slots}
        if len(owners) != 1:
            raise RuntimeError(f"nodes disagree on the owner of slot {slot}: {owners}")
        return owners.pop()

    def owner_of_key(self, key: str) -> int:
        """The port of the master holding ``key``'s slot (hash tags honoured)."""
        return self.owner_of_slot(key_slot(key.encode()))

    def node_id(self, port: int) -> str:
        """The cluster node id of the node on ``port``."""
        return _text(node_command(port, "CLUSTER", "MYID"))

    def replica_of(self, master_port: int) -> int:
        """The port of a replica of the master on ``master_port`` whose link is up.

        Asked of the replicas themselves (``INFO replication``): the master's own
        ``CLUSTER NODES`` may not know its replicas yet right after the cluster formed.
        """
        for node in self.nodes:
            if node.pid is None or node.port == master_port:
                continue
            info = node_command(node.port, "INFO", "replication")
            if (
                info.get("role") == "slave"
                and int(info.get("master_port", 0)) == master_port
                and info.get("master_link_status") == "up"
            ):
                return node.port
        raise RuntimeError(f"master {master_port} has no replica")

    def failover(self, replica_port: int) -> None:
        """``CLUSTER FAILOVER`` on a replica; returns once every node sees it as the master.

        The manual failover is the clean one: the master stops taking writes, the replica
        catches up with its replication stream, then takes over, so no acknowledged write is
        lost.

        :raises RuntimeError: if the cluster does not agree in time.
        """
        node_command(replica_port, "CLUSTER", "FAILOVER")
        self._wait(
            lambda: all(
                any(n.port == replica_port and n.is_master for n in cluster_nodes(node.port))
                for node in self.nodes
            ),
            f"node {replica_port} never became master everywhere",
        )
        self._wait_until_ok()

    def migrate_slot(
        self, slot: int, target_port: int, *, batch: int = 100, pause_s: float = 0.0
    ) -> int:
        """Move ``slot`` from its master to the master on ``target_port``, keys included.

        Keys move ``batch`` at a time with ``MIGRATE ... KEYS``, ``pause_s`` apart, while
        clients keep writing: a command for a key already moved gets ``ASK``, a multi-key
        command whose keys are split gets ``TRYAGAIN`` until the move ends.

        :returns: how many keys were moved.
        :raises RuntimeError: if the cluster does not settle on the new owner in time.
        """
        source_port = self.owner_of_slot(slot)
        source_id, target_id = self.node_id(source_port), self.node_id(target_port)
        node_command(target_port, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
        node_command(source_port, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
        moved = 0
        while True:
            keys = node_command(source_port, "CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not keys:
                break
            node_command(source_port, "MIGRATE", HOST, target_port, "", 0, 5000, "KEYS", *keys)
            moved += len(keys)
            if pause_s:
                time.sleep(pause_s)
        # the target first, so the source's redirect never points to a node that refuses it
        node_command(target_port, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        node_command(source_port, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        for port in self.master_ports():
            if port not in (source_port, target_port):
                node_command(port, "CLUSTER", "SETSLOT", slot, "NODE", target_id)
        self._wait(
            lambda: self._agreed_owner(slot) == target_port,
            f"slot {slot} never moved to {target_port} on every node",
        )
        return moved

    def _agreed_owner(self, slot: int) -> int | None:
        try:
            return self.owner_of_slot(slot)
        except RuntimeError:
            return None

    def _wait(self, done: Callable[[], bool], message: str) -> None:
        deadline = time.monotonic() + _SETTLE_TIMEOUT_S
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(message)
            time.sleep(0.05)
