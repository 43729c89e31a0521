"""A consistent-hash ring: which replica serves a key (e.g. a TR-TA pair, so all its exams meet
one replica's prefix cache).  Adding or removing a replica moves only about ``1/replicas`` of keys."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable


def _point(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """``HashRing(["http://a/v1", "http://b/v1"]).node("tp1#p3")`` → the replica for that key.

    Each node sits at ``points`` places on the ring (virtual nodes), so keys spread evenly; a key
    goes to the first node clockwise from its hash.  The mapping depends on the nodes' names only,
    not on their order.
    """

    def __init__(self, nodes: Iterable[str], points: int = 64) -> None:
        self.nodes = list(dict.fromkeys(nodes))
        if not self.nodes:
            raise ValueError("a hash ring needs at least one node")
        ring = sorted((_point(f"{node}#{i}"), node) for node in self.nodes for i in range(points))
        self._hashes = [h for h, _ in ring]
        self._owners = [node for _, node in ring]

    def node(self, key: str) -> str:
        """The node that serves ``key``."""
        i = bisect.bisect(self._hashes, _point(key))
        return self._owners[i % len(self._owners)]
