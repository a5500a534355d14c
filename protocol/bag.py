"""The network as a bag of messages (raft.tla ``messages``): (message, count) pairs, sorted,
every count positive, so that each bag has one representation.

The bag is sorted, so a message's place is found by bisection (``(m,)`` sorts just before every
``(m, count)`` pair); every action that sends or consumes a message goes through here. Sorting
needs messages to be totally ordered (ints, bools, tuples of those: the schema's kinds); a
discard that bisection misses still scans the bag before concluding m is absent.
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

Bag = tuple[tuple[Any, int], ...]


def bag_send(bag: Bag, m: Any) -> Bag:
    """raft.tla ``Send``: one more copy of m in the bag."""
    if not bag:
        return ((m, 1),)
    k = bisect_left(bag, (m,))
    if k < len(bag) and bag[k][0] == m:
        return bag[:k] + ((m, bag[k][1] + 1),) + bag[k + 1 :]
    return bag[:k] + ((m, 1),) + bag[k:]


def bag_discard(bag: Bag, m: Any) -> Bag:
    """raft.tla ``Discard`` (fb894bd): one copy fewer; a count that reaches 0 leaves the bag."""
    k = bisect_left(bag, (m,))
    if k < len(bag) and bag[k][0] == m:
        count = bag[k][1]
        if count == 1:
            return bag[:k] + bag[k + 1 :]
        return bag[:k] + ((m, count - 1),) + bag[k + 1 :]
    for k, (msg, count) in enumerate(bag):  # not where the order puts it: not there, unless
        if msg == m:                         # messages hold values without a total order
            return bag[:k] + bag[k + 1 :] if count == 1 else \
                bag[:k] + ((msg, count - 1),) + bag[k + 1 :]
    return bag


def bag_size(bag: Bag) -> int:
    """Messages in flight, counted with multiplicity."""
    return sum(count for _, count in bag)
