"""A compact set of 64-bit fingerprints: open addressing with linear probing in int64 arrays.

A Python ``set`` of ints costs 80-130 bytes per fingerprint here (a 36-byte int object per
entry, and a table that grows fourfold while small); this costs 10.7-13.4 bytes (load factor
0.6-0.75), for about 0.2 µs more per lookup. Slot value 0 means empty, so fingerprint 0 is
stored as 1 (one deliberate collision in 2^64).

The set is ``SEGMENTS`` tables, chosen by a fingerprint's top bits, each growing on its own:
a single table needs its old and its new copy at once while it grows (the peak of a whole
search's memory when it happens late), a segment only 1/64 of that. A segment grows by a
quarter (``GROWTH``), not twofold, once it is three quarters full: a doubled table is between
35% and 70% full (8 B / 0.52 = 15.4 B per fingerprint on average over sizes), a table grown by
a quarter between 60% and 75% (12 B), for rehashing each fingerprint some 5 times instead of
twice (about 0.3 µs each). Slots are found by ``fp % capacity``, since capacities are not
powers of two.
"""

from __future__ import annotations

from array import array

SEGMENTS = 64
"""Tables in one set (a power of two); the segment is bits 56-61 of the fingerprint."""
MAX_LOAD = 0.75
"""A segment grows once more than this share of its slots is taken."""
GROWTH = 1.25
"""... to this many times its capacity (at least one slot more)."""


def _limit(capacity: int) -> int:
    return int(capacity * MAX_LOAD)


class FingerprintSet:
    __slots__ = ("_tables", "_sizes", "_limits", "_size")

    def __init__(self, capacity: int = 1 << 10) -> None:
        per_segment = max(4, capacity // SEGMENTS)
        self._tables = [array("q", [0]) * per_segment for _ in range(SEGMENTS)]
        self._sizes = [0] * SEGMENTS
        self._limits = [_limit(per_segment)] * SEGMENTS
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, fp: int) -> bool:
        """Insert fp; True if it was not there yet."""
        fp = fp or 1
        s = (fp >> 56) & (SEGMENTS - 1)
        table = self._tables[s]
        capacity = len(table)
        i = fp % capacity
        while True:
            slot = table[i]
            if slot == fp:
                return False
            if slot == 0:
                table[i] = fp
                self._size += 1
                n = self._sizes[s] = self._sizes[s] + 1
                if n > self._limits[s]:
                    self._grow(s)
                return True
            i += 1
            if i == capacity:
                i = 0

    def _grow(self, s: int) -> None:
        old = self._tables[s]
        capacity = max(len(old) + 1, int(len(old) * GROWTH))
        table = self._tables[s] = array("q", [0]) * capacity
        self._limits[s] = _limit(capacity)
        for fp in old:
            if fp:
                i = fp % capacity
                while table[i]:
                    i += 1
                    if i == capacity:
                        i = 0
                table[i] = fp
