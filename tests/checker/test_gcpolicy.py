"""The search's memory policy (checker/gcpolicy.py): young collections only inside a search,
the previous thresholds after it, and glibc's mmap threshold fixed."""

from __future__ import annotations

import gc
import platform

import pytest

from raftspec.checker import gcpolicy


def test_search_policy_collects_young_only_and_restores_the_thresholds() -> None:
    before = gc.get_threshold()
    with gcpolicy.search_policy():
        assert gc.get_threshold() == (*gcpolicy.YOUNG, gcpolicy.NEVER)
    assert gc.get_threshold() == before


def test_searching_restores_the_thresholds_after_an_exception() -> None:
    before = gc.get_threshold()

    @gcpolicy.searching
    def fails() -> None:
        assert gc.get_threshold()[2] == gcpolicy.NEVER
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fails()
    assert gc.get_threshold() == before


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc",
                    reason="mallopt's mmap threshold is glibc's; elsewhere nothing is set")
def test_the_mmap_threshold_is_fixed_on_glibc() -> None:
    assert gcpolicy.fix_mmap_threshold() is True


def test_a_level_done_freezes_its_survivors_until_the_search_ends() -> None:
    assert gc.get_freeze_count() == 0
    with gcpolicy.search_policy():
        survivor = [object() for _ in range(100)]
        gcpolicy.level_done()
        assert gc.get_freeze_count() >= len(survivor)
        assert gc.get_threshold()[0] == gcpolicy.LEVELS
    assert gc.get_freeze_count() == 0   # collectable again
    assert gc.get_threshold()[0] != gcpolicy.LEVELS


def test_objects_frozen_before_a_search_stay_frozen() -> None:
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gcpolicy.search_policy():
            gcpolicy.level_done()
        assert gc.get_freeze_count() >= frozen   # not unfrozen: freezing is all or none
    finally:
        gc.unfreeze()


def test_a_search_leaves_nothing_frozen_and_frees_its_cycles_after() -> None:
    """explore freezes each level; at its end the objects are collectable again, so a garbage
    cycle built by a step inside the search is freed by the next collection after it."""
    import weakref

    from raftspec.checker.explore import explore

    refs = []

    class Node:
        pass

    class Cycles:
        """A counter whose every step builds a garbage cycle."""

        invariants: dict = {}
        step_properties: dict = {}

        def init_states(self):
            return (0,)

        def steps(self, state):
            a, b = Node(), Node()
            a.other, b.other = b, a
            refs.append(weakref.ref(a))
            return [("inc", state + 1)] if state < 50 else []

        def constraint(self, state):
            return True

        def fingerprint(self, state):
            return hash(("counter", state))

    assert gc.get_freeze_count() == 0
    result = explore(Cycles())
    assert result.distinct_states == 51
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert len(refs) == 51 and all(ref() is None for ref in refs)
