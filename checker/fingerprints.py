"""A compact set of 64-bit fingerprints: open addressing with linear probing in an int64 array.

A Python ``set`` of ints costs 80-130 bytes per fingerprint here (a 36-byte int object per
entry, and a table that grows fourfold while small); this costs 11-23 bytes (load factor
0.35-0.7), for about 0.2 µs more per lookup. Slot value 0 means empty, so fingerprint 0 is
stored as 1 (one deliberate collision in 2^64).
"""

from __future__ import annotations

from array import array


class FingerprintSet:
    __slots__ = ("_table", "_mask", "_size", "_limit")

    def __init__(self, capacity: int = 1 << 10) -> None:
        if capacity & (capacity - 1):
            raise ValueError("capacity must be a power of two")
        self._table = array("q", [0]) * capacity
        self._mask = capacity - 1
        self._size = 0
        self._limit = capacity * 7 // 10

    def __len__(self) -> int:
        return self._size

    def add(self, fp: int) -> bool:
        """Insert fp; True if it was not there yet."""
        fp = fp or 1
        table, mask = self._table, self._mask
        i = fp & mask
        while True:
            slot = table[i]
            if slot == fp:
                return False
            if slot == 0:
                table[i] = fp
                self._size += 1
                if self._size > self._limit:
                    self._grow()
                return True
            i = (i + 1) & mask

    def _grow(self) -> None:
        old = self._table
        capacity = 2 * len(old)
        del self._table   # the old table and the new one, never a third copy (bytes(...))
        table = self._table = array("q", [0]) * capacity
        mask = self._mask = capacity - 1
        self._limit = capacity * 7 // 10
        for fp in old:
            if fp:
                i = fp & mask
                while table[i]:
                    i = (i + 1) & mask
                table[i] = fp
