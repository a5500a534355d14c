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
