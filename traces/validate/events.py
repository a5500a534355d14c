"""Merging per-node event lists into one order consistent with causality.

Each node's events keep their order; a receive comes after the send it names. Wall clocks only
break ties among events that are ready (they never override causality), so clock skew between
machines cannot make a valid trace look invalid.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from raftspec.traces.schema import causal_order
from raftspec.traces.validate.adapter import Event


def count_deliveries(files: Sequence[Sequence[Event]]) -> None:
    """Set each send's ``deliveries``: how many receives name it (0 = lost or still in flight,
    2+ = duplicated by the network). The search uses it to explain loss and duplication with
    the reference's own DropMessage and DuplicateMessage."""
    received = Counter(e.recv_id for events in files for e in events if e.recv_id is not None)
    for events in files:
        for e in events:
            if e.send_id is not None:
                e.deliveries = received.get(e.send_id, 0)


def merge(files: Sequence[Sequence[Event]], key=None) -> tuple[list[Event], list[Event]]:
    """(merged events, events that cannot be placed). The second list is non-empty only when a
    receive comes before its own send in some node's order (a causality cycle): those events
    and everything after them in their files."""
    key = key or (lambda e: e.data.get("time_ns", 0))
    out, pos = causal_order(files, send_id=lambda e: e.send_id, waits_for=lambda e: e.waits_for,
                            key=key)
    stuck = [e for k, events in enumerate(files) for e in events[pos[k]:]]
    if stuck:
        cycle = _cycle(files, pos)
        first = max(cycle, key=key)   # the receive placed earliest against its own clock
        stuck.remove(first)
        stuck.insert(0, first)
    return out, stuck


def _cycle(files: Sequence[Sequence[Event]], pos: list[int]) -> list[Event]:
    """The receives, one per file, that wait on each other's sends (a cycle must exist when
    the merge is stuck: every blocked file waits on a send further down another file)."""
    where = {e.send_id: k for k, events in enumerate(files) for e in events[pos[k]:]
             if e.send_id is not None}
    k = next(k for k in range(len(files)) if pos[k] < len(files[k]))
    seen: list[int] = []
    while k not in seen:
        seen.append(k)
        k = where[files[k][pos[k]].waits_for]
    return [files[j][pos[j]] for j in seen[seen.index(k):]]
