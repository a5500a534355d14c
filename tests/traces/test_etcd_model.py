"""The etcd-raft variant explored by the checker (reference/variants/etcd_model.py): without
``raft.hup``'s guard (no campaign with a committed, unapplied configuration change; etcd-io/raft
#456) the checker finds two leaders in one term; with it, no property is violated."""

from __future__ import annotations

import pytest

from raftspec.reference.variants import etcd
from raftspec.reference.variants.etcd_model import (
    INVARIANTS,
    ISSUE_456_PREFIX,
    STEP_PROPERTIES,
    EtcdBounds,
    check,
    replay,
)


def test_without_the_campaign_guard_the_checker_finds_two_leaders_in_one_term() -> None:
    bounds = EtcdBounds(guard=False)
    result = check(bounds, replay(bounds, ISSUE_456_PREFIX))
    assert result.violated == "election_safety"
    last = result.trace[-1][1]
    leaders = [(k, s.term) for k, s in enumerate(last.servers, 1) if s.role == etcd.LEADER]
    assert len(leaders) == 2 and leaders[0][1] == leaders[1][1]
    # the stale leader campaigned with a configuration its own log had already changed
    stale = next(s for k, s in enumerate(last.servers, 1) if s.role == etcd.LEADER
                 and s.voters == frozenset({1, 2, 3}))
    assert stale.applied < stale.commit
    assert any(e.conf is not None for e in stale.log[stale.applied: stale.commit])


def test_with_the_guard_no_property_is_violated_from_the_same_state() -> None:
    """Every property, every path of up to 12 steps from the state above (the violation
    needs 9 without the guard); benchmarks/bench_etcd_model.py explores it exhaustively."""
    bounds = EtcdBounds(guard=True)
    result = check(bounds, replay(bounds, ISSUE_456_PREFIX), max_depth=12)
    assert result.violated is None and result.distinct_states > 1000


def test_every_safety_property_is_checked() -> None:
    assert set(INVARIANTS) == {"election_safety", "log_matching", "state_machine_safety",
                               "leader_completeness", "commit_within_log"}
    assert set(STEP_PROPERTIES) == {"leader_append_only", "commit_never_decreases"}


def test_the_prefix_only_uses_enabled_actions() -> None:
    with pytest.raises(ValueError, match="not enabled"):
        replay(EtcdBounds(), [("Ready", 2)])


def test_the_log_properties_catch_divergent_logs() -> None:
    from raftspec.reference.variants.etcd import Entry, Server
    from raftspec.reference.variants.etcd_model import (
        ModelState,
        leader_completeness,
        log_matching,
        state_machine_safety,
    )

    a = Server(term=2, log=(Entry(1), Entry(1)), commit=2)
    b = Server(term=2, log=(Entry(1), Entry(2)), commit=2)
    c = Server(term=3, role=etcd.LEADER, log=(Entry(1), Entry(3)), commit=1)
    assert not state_machine_safety(ModelState((a, b), frozenset()))
    assert not leader_completeness(ModelState((a, c), frozenset()))
    d = Server(log=(Entry(1), Entry(2)))
    e = Server(log=(Entry(2), Entry(2)))
    assert not log_matching(ModelState((d, e), frozenset()))
    assert log_matching(ModelState((a, a), frozenset()))
