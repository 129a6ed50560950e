"""Consistent hash ring: spreads nodes over the live conductors of each conductor group.

Each conductor owns 2**hash_partition_exponent points on a ring of md5 values; a node belongs to
the first conductor clockwise from the md5 of its UUID (and, with replicas, the next distinct
ones). Removing a conductor moves only the nodes it owned; everyone else keeps theirs.

Our own small ring rather than tooz.hashring: importing tooz pulls in futurist and eventlet.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from agent.common import exception
from agent.common.config import CONF


def _hash(data: str) -> int:
    return int.from_bytes(hashlib.md5(data.encode(), usedforsecurity=False).digest(), "big")


class HashRing:
    """A ring over a fixed set of hosts."""

    def __init__(self, hosts: Iterable[str], partition_exponent: int = 7) -> None:
        self.hosts: frozenset[str] = frozenset(hosts)
        if not self.hosts:
            raise ValueError("a hash ring needs at least one host")
        points = []
        for host in sorted(self.hosts):
            for vnode in range(2**partition_exponent):
                points.append((_hash(f"{host}\x00{vnode}"), host))
        points.sort()
        self._keys = [point for point, _host in points]
        self._owners = [host for _point, host in points]

    def get_hosts(self, key: str, replicas: int = 1, ignore_hosts: Iterable[str] = ()) -> list[str]:
        """The hosts responsible for ``key``, primary first: up to ``replicas`` distinct hosts."""
        ignored = set(ignore_hosts)
        wanted = min(replicas, len(self.hosts - ignored))
        found: list[str] = []
        start = bisect.bisect(self._keys, _hash(key))
        for offset in range(len(self._owners)):
            if len(found) >= wanted:
                break
            host = self._owners[(start + offset) % len(self._owners)]
            if host not in ignored and host not in found:
                found.append(host)
        return found


def _attr(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _online_conductors() -> list[Any]:
    from agent.db import api as db_api  # the conductor's DB; imported late so the ring stays importable

    return db_api.get_online_conductors(CONF.conductor.heartbeat_timeout)


class HashRingManager:
    """Rings per conductor group, built from the live conductors and rebuilt every reset interval."""

    def __init__(
        self,
        conductors: Callable[[], Sequence[Any]] | None = None,
        reset_interval: float | None = None,
        replicas: int | None = None,
        partition_exponent: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._source = conductors or _online_conductors
        self._reset_interval = reset_interval
        self._replicas = replicas
        self._exponent = partition_exponent
        self._clock = clock
        self._lock = threading.Lock()
        self._rings: dict[str, HashRing] | None = None
        self._built_at = 0.0

    @property
    def replicas(self) -> int:
        """How many conductors each node maps to."""
        return self._replicas or CONF.conductor.hash_ring_replicas

    def reset(self) -> None:
        """Drop the built rings; the next lookup reads the live conductors again."""
        with self._lock:
            self._rings = None

    def rings(self) -> dict[str, HashRing]:
        """The current rings by conductor group ("" is the default group)."""
        interval = (
            self._reset_interval
            if self._reset_interval is not None
            else CONF.conductor.hash_ring_reset_interval
        )
        with self._lock:
            if self._rings is None or self._clock() - self._built_at >= interval:
                exponent = self._exponent or CONF.conductor.hash_partition_exponent
                by_group: dict[str, set[str]] = {}
                for conductor in self._source():
                    group = (_attr(conductor, "conductor_group") or "").lower()
                    by_group.setdefault(group, set()).add(_attr(conductor, "hostname"))
                self._rings = {group: HashRing(hosts, exponent) for group, hosts in by_group.items()}
                self._built_at = self._clock()
            return dict(self._rings)

    def get_ring(self, conductor_group: str | None = "") -> HashRing:
        """The ring of ``conductor_group``; ConductorNotFound when no conductor of it is alive."""
        group = (conductor_group or "").lower()
        ring = self.rings().get(group)
        if ring is None:
            label = f'conductor group "{group}"' if group else "the default conductor group"
            raise exception.ConductorNotFound(what=f"nodes of {label} (no live conductor in it)")
        return ring

    def get_conductors_for(self, node: Any) -> list[str]:
        """The conductors a node maps to, the managing one first."""
        ring = self.get_ring(_attr(node, "conductor_group"))
        return ring.get_hosts(str(_attr(node, "uuid")), replicas=self.replicas)

    def get_conductor_for(self, node: Any) -> str:
        """The conductor that manages ``node`` (anything with uuid and conductor_group)."""
        return self.get_conductors_for(node)[0]

    def nodes_for_conductor(
        self, host: str, nodes: Iterable[Any], include_replicas: bool = False
    ) -> list[Any]:
        """The nodes among ``nodes`` that ``host`` manages (or holds a replica of)."""
        rings = self.rings()  # one snapshot for the whole list
        mine = []
        for node in nodes:
            ring = rings.get((_attr(node, "conductor_group") or "").lower())
            if ring is None:
                continue
            hosts = ring.get_hosts(str(_attr(node, "uuid")), replicas=self.replicas)
            if (host in hosts) if include_replicas else (hosts[0] == host):
                mine.append(node)
        return mine


_default: HashRingManager | None = None


def default_manager() -> HashRingManager:
    """The process-wide ring manager reading the live conductors from the database."""
    global _default
    if _default is None:
        _default = HashRingManager()
    return _default


def get_conductor_for(node: Any) -> str:
    """The live conductor that manages ``node``."""
    return default_manager().get_conductor_for(node)


def nodes_for_conductor(host: str, nodes: Iterable[Any]) -> list[Any]:
    """The nodes among ``nodes`` that ``host`` manages."""
    return default_manager().nodes_for_conductor(host, nodes)
