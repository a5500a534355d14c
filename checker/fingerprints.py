"""A compact set of 64-bit fingerprints: open addressing with linear probing in int64 arrays.

A Python ``set`` of ints costs 80-130 bytes per fingerprint here (a 36-byte int object per
entry, and a table that grows fourfold while small); this costs 11-23 bytes (load factor
0.35-0.7), for about 0.2 µs more per lookup. Slot value 0 means empty, so fingerprint 0 is
stored as 1 (one deliberate collision in 2^64).

The set is ``SEGMENTS`` tables, chosen by a fingerprint's top bits, each doubling on its own:
a single table needs its old and its new copy at once while it doubles (1.5x its size, and
the peak of a whole search's memory when it happens late), a segment only 1/64 of that.
"""

from __future__ import annotations

from array import array

SEGMENTS = 64
"""Tables in one set (a power of two); the segment is bits 56-61 of the fingerprint."""


class FingerprintSet:
    __slots__ = ("_tables", "_sizes", "_limits", "_size")

    def __init__(self, capacity: int = 1 << 10) -> None:
        if capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two")
        per_segment = max(4, capacity // SEGMENTS)
        self._tables = [array("q", [0]) * per_segment for _ in range(SEGMENTS)]
        self._sizes = [0] * SEGMENTS
        self._limits = [per_segment * 7 // 10] * SEGMENTS
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, fp: int) -> bool:
        """Insert fp; True if it was not there yet."""
        fp = fp or 1
        s = (fp >> 56) & (SEGMENTS - 1)
        table = self._tables[s]
        mask = len(table) - 1
        i = fp & mask
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
            i = (i + 1) & mask

    def _grow(self, s: int) -> None:
        old = self._tables[s]
        capacity = 2 * len(old)
        table = self._tables[s] = array("q", [0]) * capacity
        mask = capacity - 1
        self._limits[s] = capacity * 7 // 10
        for fp in old:
            if fp:
                i = fp & mask
                while table[i]:
                    i = (i + 1) & mask
                table[i] = fp
