"""The network as a bag of messages (raft.tla ``messages``): (message, count) pairs, sorted,
every count positive, so that each bag has one representation."""

from __future__ import annotations

from typing import Any

Bag = tuple[tuple[Any, int], ...]


def bag_send(bag: Bag, m: Any) -> Bag:
    """raft.tla ``Send``: one more copy of m in the bag."""
    for k, (msg, count) in enumerate(bag):
        if msg == m:
            return bag[:k] + ((msg, count + 1),) + bag[k + 1 :]
    return tuple(sorted(bag + ((m, 1),)))


def bag_discard(bag: Bag, m: Any) -> Bag:
    """raft.tla ``Discard`` (fb894bd): one copy fewer; a count that reaches 0 leaves the bag."""
    for k, (msg, count) in enumerate(bag):
        if msg == m:
            if count == 1:
                return bag[:k] + bag[k + 1 :]
            return bag[:k] + ((msg, count - 1),) + bag[k + 1 :]
    return bag


def bag_size(bag: Bag) -> int:
    """Messages in flight, counted with multiplicity."""
    return sum(count for _, count in bag)
