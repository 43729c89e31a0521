"""The consistent-hash ring that routes a pair's exams to one replica."""

from __future__ import annotations

import pytest

from lbt_agents.routing import HashRing

KEYS = [f"tp{t}#p{p}" for t in range(30) for p in range(100)]
NODES = ["http://a:8000/v1", "http://b:8000/v1", "http://c:8000/v1"]


def owners(ring: HashRing) -> dict[str, str]:
    return {key: ring.node(key) for key in KEYS}


def test_keys_spread_over_every_node_and_order_does_not_matter() -> None:
    placed = owners(HashRing(NODES))
    shares = {node: list(placed.values()).count(node) / len(KEYS) for node in NODES}
    assert all(share > 0.2 for share in shares.values()), shares
    assert owners(HashRing(reversed(NODES))) == placed


def test_adding_a_replica_moves_only_keys_to_it() -> None:
    before, after = owners(HashRing(NODES)), owners(HashRing([*NODES, "http://d:8000/v1"]))
    moved = [key for key in KEYS if before[key] != after[key]]
    assert all(after[key] == "http://d:8000/v1" for key in moved)
    assert 0.1 < len(moved) / len(KEYS) < 0.4  # about a quarter, not a reshuffle


def test_removing_a_replica_moves_only_its_keys() -> None:
    before, after = owners(HashRing(NODES)), owners(HashRing(NODES[:2]))
    assert all(before[key] == after[key] for key in KEYS if before[key] != NODES[2])
    assert all(after[key] in NODES[:2] for key in KEYS)


def test_an_empty_ring_is_refused() -> None:
    with pytest.raises(ValueError):
        HashRing([])
