"""The WGL search: is there a legal sequential order that respects real time?

Wing & Gong (1993) enumerate linearizations by repeatedly choosing a *minimal* operation (one
invoked before every pending operation has returned) and backtracking when none fits. Lowe
("Testing for linearizability", 2017) made it practical by memoizing configurations: once the
search has been in a state with the same set of linearized operations and the same object state,
going there again cannot succeed. Porcupine implements the same algorithm over a doubly linked
list of call/return entries; this module follows that design:

* entries are the call and return events sorted by time (calls first on ties, so operations
  with equal timestamps count as concurrent);
* walking the list from the head, a call entry is a candidate; linearizing it removes ("lifts")
  the call and its return from the list, in O(1), and pushes it on a stack;
* reaching a return entry means that operation has to be linearized before anything later, so
  the search backtracks (pops, re-inserts the entries, tries the next candidate);
* the linearized set is a Python ``int`` bitset and the memo is a ``set`` of
  ``(bitset, state)`` pairs.

The search is a generator that yields every few thousand steps so that the caller can
interleave many partitions (keys) and stop at the first illegal one: checked one after another,
one hard but legal key can delay a verdict that another key gives in milliseconds.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import Any

from raftspec.traces.lincheck.models import ILLEGAL, Step

__all__ = ["SLICE", "Search", "search", "run"]

SLICE = 4096
"""Search steps between two yields."""

Search = Generator[None, None, bool | None]


def search(init: Any, steps: Sequence[Step], calls: Sequence[float], rets: Sequence[float],
           max_steps: int | None = None, slice_steps: int = SLICE) -> Search:
    """Search for a linearization of the operations ``i`` (intervals ``calls[i]..rets[i]``).

    Returns (as the generator's value) True when one exists, False when none does, and None
    when ``max_steps`` ran out first.
    """
    n = len(steps)
    if n == 0:
        return True
    order = sorted(
        [(calls[i], 0, i) for i in range(n)] + [(rets[i], 1, i) for i in range(n)],
    )
    tail = 2 * n + 1
    # Entry e in 1..2n; 0 is the head, tail the tail. For a call entry, match[e] is its return
    # entry; for a return entry it is 0.
    match = [0] * (tail + 1)
    op_of = [0] * (tail + 1)
    ret_entry = [0] * n
    for e, (_, kind, i) in enumerate(order, start=1):
        op_of[e] = i
        if kind:
            ret_entry[i] = e
    for e, (_, kind, i) in enumerate(order, start=1):
        if not kind:
            match[e] = ret_entry[i]
    nxt = list(range(1, tail + 2))
    prv = list(range(-1, tail))
    bits = [1 << i for i in range(n)]
    step_of = [steps[op_of[e]] for e in range(tail + 1)]
    bit_of = [bits[op_of[e]] for e in range(tail + 1)]

    state = init
    lin = 0
    stack: list[tuple[int, Any]] = []
    push = stack.append
    pop = stack.pop
    cache: set[tuple[int, Any]] = set()
    seen = cache.add
    budget = slice_steps
    total = 0
    e = nxt[0]
    while e != tail:
        budget -= 1
        if not budget:
            total += slice_steps
            if max_steps is not None and total >= max_steps:
                return None
            yield
            budget = slice_steps
        m = match[e]
        if m:
            s2 = step_of[e](state)
            if s2 is not ILLEGAL:
                lin2 = lin | bit_of[e]
                key = (lin2, s2)
                if key not in cache:
                    seen(key)
                    push((e, state))
                    state = s2
                    lin = lin2
                    p = prv[e]
                    q = nxt[e]
                    nxt[p] = q
                    prv[q] = p
                    p = prv[m]
                    q = nxt[m]
                    nxt[p] = q
                    prv[q] = p
                    e = nxt[0]
                    continue
            e = nxt[e]
        else:
            if not stack:
                return False
            e, state = pop()
            lin ^= bit_of[e]
            m = match[e]
            nxt[prv[m]] = m
            prv[nxt[m]] = m
            nxt[prv[e]] = e
            prv[nxt[e]] = e
            e = nxt[e]
    return True


def run(gen: Search) -> bool | None:
    """Drive one search to its end and return its verdict."""
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
