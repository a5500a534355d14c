"""A concurrent history as the checker sees it: completed or open operations with intervals.

Linearizability (Herlihy & Wing) is a property of operations, not of events: each operation has
an invocation time, a response time (``math.inf`` when the outcome is unknown) and, when it
completed, a result. Every reader turns its format into a list of :class:`Operation`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["KV_FUNCTIONS", "REGISTER_FUNCTIONS", "UNKNOWN", "History", "Operation"]

KV_FUNCTIONS = frozenset({"get", "put", "append"})
REGISTER_FUNCTIONS = frozenset({"read", "write", "cas"})


class _Unknown:
    """The result of an operation whose response was never seen (Jepsen ``:info``, a timeout)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"

    def __reduce__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation.

    ``arg`` is the input (``None`` for reads; the value for put/append/write; ``(old, new)`` for
    cas). ``out`` is what the model must reproduce: the value read (``None`` = a nil register),
    ``True``/``False`` for a cas that swapped / did not, ``None`` for put/append/write (nothing to
    check), or :data:`UNKNOWN`. ``ret`` is ``math.inf`` when the operation never returned: it may
    take effect at any point after ``call``, or never.
    """

    process: int
    f: str
    key: str | None
    arg: Any
    out: Any
    call: float
    ret: float
    line: int
    ret_line: int | None = None

    @property
    def open(self) -> bool:
        """True when the outcome is unknown (the response time is +infinity)."""
        return math.isinf(self.ret)

    def describe(self) -> str:
        """A short human-readable form, e.g. ``get("1") -> "x 0 1 y"`` or ``cas(1, 3) -> ok``."""
        if self.f in KV_FUNCTIONS:
            head = f"{self.f}({_show(self.key)}"
            head += ")" if self.f == "get" else f", {_show(self.arg)})"
        elif self.f == "cas":
            head = f"cas({_show(self.arg[0])}, {_show(self.arg[1])})"
        elif self.f == "write":
            head = f"write({_show(self.arg)})"
        else:
            head = "read()"
        if self.out is UNKNOWN:
            return head + " -> ?"
        if self.f == "cas":
            return head + (" -> ok" if self.out else " -> fail")
        if self.f in ("get", "read"):
            return head + " -> " + _show(self.out)
        return head


def _show(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return str(value)


@dataclass(frozen=True, slots=True)
class History:
    """The operations read from one file, with the format and the model it implies."""

    path: str | None
    format: str
    model: str
    operations: tuple[Operation, ...]
