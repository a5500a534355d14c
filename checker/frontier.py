"""A BFS level that spills to disk: (state, index) pairs in discovery order, of which at most
``spill_from`` states are Python objects at any time; the rest are pickled in chunks to an
anonymous temporary file (deleted when closed or when the process ends).

Why: the seen set costs some 25-35 bytes per distinct state (fingerprint table, fingerprint,
parent index), but a level of full states costs a few hundred bytes per state as Python
objects, and a large model's widest level holds a large share of all its states. Pickled in
chunks, states that share servers and messages (most of a level's states differ in one server)
cost some 40-70 bytes each on disk and nothing in memory; each state is written once and read
once.
"""

from __future__ import annotations

import pickle
import tempfile
from array import array
from collections.abc import Iterator
from typing import IO, Any


class Chunks:
    """Objects pickled one after another to an anonymous temporary file, created with the
    first, read back in the order written (each as often as asked). Both spilling lists of
    states use it: ``Frontier`` (one process) and ``parallel.SpillingStates`` (a shard)."""

    __slots__ = ("_prefix", "_file", "_where")

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._file: IO[bytes] | None = None
        self._where: list[tuple[int, int]] = []   # (offset, length) of each in the file

    def __bool__(self) -> bool:
        """Whether anything was written (and the file is open)."""
        return self._file is not None

    def write(self, obj: Any) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix=self._prefix)  # noqa: SIM115 (closed by close())
        data = pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)
        offset = self._file.seek(0, 2)
        self._file.write(data)
        self._where.append((offset, len(data)))

    def __iter__(self) -> Iterator[Any]:
        for offset, length in self._where:
            assert self._file is not None
            self._file.seek(offset)
            yield pickle.loads(self._file.read(length))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._where = []


class Frontier:
    __slots__ = ("_states", "_index", "_limit", "_disk", "_size")

    def __init__(self, spill_from: int | None = None) -> None:
        self._states: list[Any] = []
        self._index = array("q")
        self._limit = spill_from
        self._disk = Chunks("raftspec-frontier-")
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def __bool__(self) -> bool:
        return self._size > 0

    def append(self, state: Any, index: int) -> None:
        self._states.append(state)
        self._index.append(index)
        self._size += 1
        if self._limit is not None and len(self._states) >= self._limit:
            self._spill()

    def _spill(self) -> None:
        self._disk.write((self._states, self._index.tobytes()))
        self._states, self._index = [], array("q")

    @property
    def spilled(self) -> bool:
        return bool(self._disk)

    def __iter__(self) -> Iterator[tuple[Any, int]]:
        """The pairs in the order they were appended (the chunks on disk first)."""
        for states, raw in self._disk:
            index = array("q")
            index.frombytes(raw)
            yield from zip(states, index, strict=True)
        yield from zip(self._states, self._index, strict=True)

    def states(self) -> list[Any]:
        return [state for state, _ in self]

    def indices(self) -> array:
        return array("q", [index for _, index in self])

    def close(self) -> None:
        self._disk.close()
        self._states, self._index = [], array("q")
