"""The garbage collector's policy during a search: collect young objects only.

CPython's cyclic collector runs a full collection (every tracked object: every state of the seen
levels, their servers, logs and message bags) each time the objects surviving younger
collections grow by a quarter. A search keeps millions of such tuples alive and frees almost
nothing cyclic: states are immutable tuples, and what a step discards is freed by reference
counting. Measured on elect3m2 to depth 20 (one process, ``gc.callbacks``): full collections took
8% of the CPU time of a plain search and 33% of a two-shard one (whose received states are new
objects, not shared with their parents); ``benchmarks/bench_checker.py`` measures the effect.

So a search raises the young generation's threshold and never runs a full collection; garbage
cycles are still collected while young (a user's action that builds cycles leaks only what
survives two young collections, until the search ends and the default policy is restored).
"""

from __future__ import annotations

import contextlib
import functools
import gc
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

YOUNG = (50_000, 20)
"""Allocations between two young collections, and young collections between two middle ones."""
NEVER = 2**31 - 1


def set_search_policy() -> None:
    """For a process that only searches (a shard): young collections only, from now on."""
    gc.set_threshold(*YOUNG, NEVER)


@contextlib.contextmanager
def search_policy() -> Iterator[None]:
    """Young collections only inside the block; the previous thresholds after it."""
    old = gc.get_threshold()
    set_search_policy()
    try:
        yield
    finally:
        gc.set_threshold(*old)


def searching(function: F) -> F:
    """``function`` run under ``search_policy``."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with search_policy():
            return function(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
