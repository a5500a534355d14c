"""Sequential specifications: what one key (or one register) may do, one operation at a time.

A model is an initial state plus a compiler from an operation to a *step function*
``state -> new state`` that returns :data:`ILLEGAL` when the operation's recorded result is
impossible in that state. Compiling once per operation (rather than dispatching on the
operation's name at every search step) keeps the inner loop of the WGL search short, the way
Porcupine's models are plain ``Step(state, input, output)`` functions.

States are small immutable values (a ``str`` for a kv key, an ``int``/``None`` for a register)
because the search memoizes ``(linearized set, state)`` pairs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from raftspec.traces.lincheck.history import KV_FUNCTIONS, REGISTER_FUNCTIONS, UNKNOWN, Operation

__all__ = ["ILLEGAL", "KV", "MODELS", "REGISTER", "Model", "Step"]

ILLEGAL: Any = object()
"""Returned by a step function when the operation cannot happen in the given state."""

Step = Callable[[Any], Any]


@dataclass(frozen=True)
class Model:
    """A per-key sequential specification (the checker partitions histories by key)."""

    name: str
    functions: frozenset[str]
    init: Any
    compile: Callable[[Operation], Step]


def _kv_step(op: Operation) -> Step:
    """Key-value semantics of the 6.824 kvraft tester: a missing key reads as ""."""
    if op.f == "get":
        if op.out is UNKNOWN:
            return lambda s: s
        want = op.out
        return lambda s: s if s == want else ILLEGAL
    arg = op.arg
    if op.f == "put":
        return lambda s: arg
    return lambda s: s + arg


def _register_step(op: Operation) -> Step:
    """A CAS register, initially nil (``None``): read, write, compare-and-set."""
    if op.f == "read":
        if op.out is UNKNOWN:
            return lambda s: s
        want = op.out
        return lambda s: s if s == want else ILLEGAL
    if op.f == "write":
        arg = op.arg
        return lambda s: arg
    old, new = op.arg
    if op.out is UNKNOWN:
        return lambda s: new if s == old else s
    if op.out:
        return lambda s: new if s == old else ILLEGAL
    return lambda s: s if s != old else ILLEGAL


KV = Model("kv", KV_FUNCTIONS, "", _kv_step)
REGISTER = Model("register", REGISTER_FUNCTIONS, None, _register_step)
MODELS = {"kv": KV, "register": REGISTER}
