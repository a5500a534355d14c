"""The memory policy during a search: the collector collects young objects only, and glibc's
malloc keeps a fixed threshold for serving large blocks by mmap.

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

A breadth-first search goes further (``level_done``): once a level is expanded and checked,
what survives it (the next level's states, mostly) is frozen (``gc.freeze``: moved out of the
collector's generations, in constant time; reference counting still frees it), and the young
threshold is raised to ``LEVELS``, so young collections no longer scan each new state once
while its level is built, to find no garbage (a search's steps build almost no cycles: 44 objects of
cyclic garbage found in elect3m2's search to depth 18, 0-376 on six other models). Measured on
elect3m2's whole search (``gc.callbacks``, 2 December): one process ran 83 young and 3 middle
collections, 2.7 s of its 37.9 s CPU; each of 2 workers 73-75 and 3, 2.9-3.0 s of 23.9-24.5 s
(the states a shard keeps aside until their owner answers survive into them); now none. End to
end (``raftspec check --json``, this code and the previous one alternating, 2 rounds, medians):
one worker 39.8 -> 37.4 s (-6%), 2 workers 26.0 -> 24.7 s (-5%); the speed-up is unchanged.
The cost: cycles a step builds are collected only within a level that allocates ``LEVELS``
objects, the others once the search ends and its objects are unfrozen (a test checks it).

glibc's malloc serves blocks of 128 KiB and more by ``mmap`` (returned to the system when freed)
but raises that threshold to the size of any such block freed, up to 32 MiB; from then on a
search's large arrays (fingerprint segments as they grow, pickled frontier chunks, the parent
array as it grows) come from the heap, where the holes they leave behind stay resident. A
search fixes the threshold at its initial 128 KiB (``mallopt``; for the whole process, once):
on elect3m2 with a spilled frontier, peak resident memory per distinct state went from 33.3 B
to 31.2 B (``MALLOC_MMAP_THRESHOLD_``, the same setting by environment variable; one run each,
2,000-state chunks). Elsewhere (not glibc) nothing is changed.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import gc
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

YOUNG = (50_000, 20)
"""Allocations between two young collections, and young collections between two middle ones."""
NEVER = 2**31 - 1
LEVELS = 1_000_000
"""The young threshold of a breadth-first search once its first level is done (``level_done``)."""

M_MMAP_THRESHOLD = -3
"""``mallopt``'s parameter number for the mmap threshold (glibc's malloc.h)."""
MMAP_THRESHOLD = 128 * 1024


@functools.cache
def fix_mmap_threshold() -> bool:
    """Fix glibc malloc's mmap threshold (see the module's docstring); False where the C
    library has no ``mallopt`` or refuses the setting."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1


def level_done() -> None:
    """A BFS level is expanded and checked: freeze what survives it and raise the young
    threshold to ``LEVELS`` (see the module's docstring)."""
    gc.freeze()
    young, middle, old = gc.get_threshold()
    if young < LEVELS:
        gc.set_threshold(LEVELS, middle, old)


def set_search_policy() -> None:
    """For a process that only searches (a shard): young collections only, from now on."""
    fix_mmap_threshold()
    gc.set_threshold(*YOUNG, NEVER)


@contextlib.contextmanager
def search_policy() -> Iterator[None]:
    """Young collections only inside the block; the previous thresholds after it, and the
    objects frozen inside it unfrozen (unless some were frozen before it: all or none)."""
    old = gc.get_threshold()
    frozen = gc.get_freeze_count()
    set_search_policy()  # the mmap threshold stays fixed after the block: it is harmless
    try:
        yield
    finally:
        gc.set_threshold(*old)
        if frozen == 0:   # what ``level_done`` froze (nothing was before): collectable again
            gc.unfreeze()


def searching(function: F) -> F:
    """``function`` run under ``search_policy``."""
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with search_policy():
            return function(*args, **kwargs)
    return wrapper  # type: ignore[return-value]
