"""Joint consensus (reference/variants/joint.py): a change through C_old,new, step by step;
random walks that keep raft.tla's safety properties and the variant's rules; the CI model."""

from __future__ import annotations

import pytest
from drive import Run, walk
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.reference.config import Config
from raftspec.reference.protocol import build_protocol
from raftspec.reference.state import Role
from raftspec.reference.variants import joint
from raftspec.spec.model import MODELS_DIR, load_model

VARIANTS = MODELS_DIR / "variants"
THREE = Config(servers=3, values=1, max_term=9, max_log_length=9, max_messages=9,
               restart=False, duplicate=False, drop=False, initial_members=2)


def test_replacing_a_server_needs_majorities_of_both_configurations() -> None:
    run = Run(build_protocol("joint"), THREE)
    run.elect(1, [1, 2])
    # The initial configuration {1, 2} is simple and committed: a change may begin at once.
    run.do("BeginChange", 1, frozenset({2, 3}))
    assert not run.enabled("BeginChange", 1, frozenset({3}))  # one change at a time
    assert not run.enabled("CompleteChange", 1)  # C_old,new not committed yet
    run.do("AppendEntries", 1, 2)
    run.flush()
    run.do("AdvanceCommitIndex", 1)
    # {1, 2} is a majority of C_old but only s2 of C_new = {2, 3}.
    assert run.state.server(1).commit_index == 0
    run.do("AppendEntries", 1, 3)  # s3, outside C_old, is a member of C_old,new
    run.flush()
    run.do("AdvanceCommitIndex", 1)
    assert run.state.server(1).commit_index == 1 and run.holds("state_machine_safety")
    run.do("CompleteChange", 1)
    new, old = joint.configuration(run.state, 1)
    assert new == (0, 1, 1) and 1 not in old
    run.do("AppendEntries", 1, 2)
    run.flush()
    run.do("AdvanceCommitIndex", 1)  # s1 is not in C_new and does not count itself
    assert run.state.server(1).role == Role.LEADER
    run.do("AppendEntries", 1, 3)
    run.flush()
    run.do("AdvanceCommitIndex", 1)
    s1 = run.state.server(1)
    assert s1.commit_index == 2 and s1.role == Role.FOLLOWER and s1.left_config
    for name in ("joint_committed", "left_joint_config", "servers_replaced"):
        assert run.protocol.reachable[name](run.state, THREE), name


def test_a_candidate_needs_both_majorities_under_c_old_new() -> None:
    run = Run(build_protocol("joint"), THREE)
    run.elect(1, [1, 2])
    run.do("BeginChange", 1, frozenset({2, 3}))
    run.do("AppendEntries", 1, 3)
    run.flush()
    # s3 holds C_old,new: it needs a majority of {1, 2} and of {2, 3}.
    run.do("Timeout", 3)
    run.do("RequestVote", 3, 3)
    run.flush()
    run.do("RequestVote", 3, 1)
    run.flush()
    assert run.state.server(3).votes_granted == {1, 3}
    assert not run.enabled("BecomeLeader", 3)  # {1, 3}: no majority of {1, 2} nor of {2, 3}
    run.do("RequestVote", 3, 2)
    run.flush()
    assert run.enabled("BecomeLeader", 3)


@settings(max_examples=30, deadline=None)
@given(initial=st.integers(1, 3), choices=st.lists(st.integers(0, 10**6), min_size=20,
                                                   max_size=150))
def test_random_walks_keep_safety_and_the_joint_rules(initial, choices) -> None:
    config = Config(servers=3, values=2, max_term=9, max_log_length=9, max_messages=3,
                    restart=False, duplicate=True, drop=True, initial_members=initial)
    protocol = build_protocol("joint")
    path = walk(protocol, config, choices)
    for _, state in path:
        for name in ("type_ok", "election_safety", "log_matching", "leader_completeness",
                     "state_machine_safety", "config_change_one_at_a_time",
                     "new_follows_joint"):
            assert protocol.invariants[name](state, config), name
    for (_, before), (action, after) in zip(path, path[1:], strict=False):
        assert protocol.step_properties["leader_append_only"](before, after, config)
        if action.name in ("BeginChange", "CompleteChange"):
            i = action.args[0]
            s = before.server(i)
            assert not any(1 in e.config for e in s.log[s.commit_index:])
            assert joint.is_joint(joint.configuration(before, i)) == (
                action.name == "CompleteChange")
        for i, (s, t) in enumerate(zip(before.servers, after.servers, strict=True), 1):
            if t.role == Role.LEADER and s.role != Role.LEADER:
                assert joint.is_quorum_of(s.votes_granted, joint.configuration(before, i))


@pytest.mark.parametrize("name", ["joint.yaml"])
def test_ci_model_reaches_everything_and_violates_nothing(name) -> None:
    from raftspec.commands.matrix import check_model

    row = check_model(load_model(VARIANTS / name))
    for prop in row.model.reachable:
        assert row.cells[prop].status == "reached", (name, prop)
    for prop in row.model.invariants:
        assert row.cells[prop].status == "ok", (name, prop)
