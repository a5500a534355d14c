"""Log compaction and InstallSnapshot (reference/variants/snapshots.py): a lagging follower
caught up by a snapshot, step by step; random walks that keep raft.tla's safety properties over
snapshot + log and never touch a compacted entry; the CI model to a bounded depth."""

from __future__ import annotations

from drive import Run, walk
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.reference.config import Config
from raftspec.reference.protocol import build_protocol
from raftspec.reference.state import Role
from raftspec.reference.variants import snapshots
from raftspec.spec.model import MODELS_DIR, load_model

THREE = Config(servers=3, values=2, max_term=9, max_log_length=9, max_messages=9,
               restart=False, duplicate=False, drop=False)
SAFETY = ("type_ok", "election_safety", "log_matching", "leader_completeness",
          "state_machine_safety", "snapshot_committed")


def commit_two_entries(run: Run) -> None:
    run.elect(1, [1, 2])
    for v in (1, 2):
        run.do("ClientRequest", 1, v)
        run.do("AppendEntries", 1, 2)
        run.flush()
    run.do("AdvanceCommitIndex", 1)
    assert run.state.server(1).commit_index == 2


def test_a_lagging_follower_is_caught_up_by_install_snapshot() -> None:
    run = Run(build_protocol("snapshots"), THREE)
    commit_two_entries(run)
    assert not run.enabled("TakeSnapshot", 3)  # nothing committed there
    run.do("TakeSnapshot", 1)
    s1 = run.state.server(1)
    assert len(s1.snapshot) == 2 and s1.log == ()
    # s3 has nothing: its next index (1) is compacted on s1, so no AppendEntries, a snapshot.
    assert not run.enabled("AppendEntries", 1, 3)
    run.do("InstallSnapshot", 1, 3)
    run.flush()
    s3 = run.state.server(3)
    assert s3.snapshot == s1.snapshot and s3.log == () and s3.commit_index == 2
    assert run.state.server(1).match_index[2] == 2  # the response advanced the leader
    assert run.protocol.reachable["caught_up_by_snapshot"](run.state, THREE)
    # Later entries go by AppendEntries from the last included index.
    run.do("ClientRequest", 1, 1)
    assert not run.enabled("InstallSnapshot", 1, 3)
    run.do("AppendEntries", 1, 3)
    run.flush()
    assert [e.value for e in run.state.server(3).log] == [1]
    for name in SAFETY:
        assert run.holds(name), name


def test_a_snapshot_keeps_the_entries_after_a_matching_last_included_entry() -> None:
    run = Run(build_protocol("snapshots"), THREE)
    commit_two_entries(run)
    run.do("ClientRequest", 1, 1)
    run.do("AppendEntries", 1, 2)
    run.flush()
    run.do("TakeSnapshot", 1)
    assert len(run.state.server(1).snapshot) == 2 and len(run.state.server(1).log) == 1
    # s2 holds entries 1..3; a snapshot up to 2 keeps its entry 3.
    leader = run.state.server(1)
    run.state = run.state.update(1, leader.evolve(
        next_index=leader.next_index[:1] + (1,) + leader.next_index[2:]))
    run.do("InstallSnapshot", 1, 2)
    run.flush()
    s2 = run.state.server(2)
    assert len(s2.snapshot) == 2 and [e.value for e in s2.log] == [1]
    assert s2.commit_index >= 2


def test_an_append_inside_the_receivers_snapshot_succeeds_without_reading_it() -> None:
    run = Run(build_protocol("snapshots"), THREE)
    commit_two_entries(run)
    run.do("AppendEntries", 1, 2)  # tells s2 the commit index
    run.flush()
    run.do("TakeSnapshot", 2)
    leader = run.state.server(1)
    run.state = run.state.update(1, leader.evolve(
        next_index=leader.next_index[:1] + (1,) + leader.next_index[2:]))
    run.do("AppendEntries", 1, 2)  # prevLogIndex 0 < s2's last included index 2
    run.flush()
    assert run.state.server(1).match_index[1] == 1
    assert run.state.server(2).commit_index == 2


@settings(max_examples=30, deadline=None)
@given(choices=st.lists(st.integers(0, 10**6), min_size=20, max_size=150),
       restart=st.booleans())
def test_random_walks_keep_safety_over_snapshot_and_log(choices, restart) -> None:
    config = Config(servers=3, values=2, max_term=9, max_log_length=9, max_messages=3,
                    restart=restart, duplicate=True, drop=True)
    protocol = build_protocol("snapshots")
    path = walk(protocol, config, choices)  # split_back raises if a compacted entry changes
    for _, state in path:
        for name in SAFETY:
            assert protocol.invariants[name](state, config), name
    for (_, before), (action, after) in zip(path, path[1:], strict=False):
        assert protocol.step_properties["leader_append_only"](before, after, config)
        for s, t in zip(before.servers, after.servers, strict=True):
            # A snapshot only grows, and only over committed entries.
            assert t.snapshot[:len(s.snapshot)] == s.snapshot
            assert len(t.snapshot) <= t.commit_index
        if action.name == "AppendEntries":
            i, j = action.args
            assert before.server(i).next_index[j - 1] - 1 >= len(before.server(i).snapshot)
        if action.name == "InstallSnapshot":
            assert before.server(action.args[0]).role == Role.LEADER


def test_ci_model_to_depth_20_reaches_everything_and_violates_nothing() -> None:
    """The full space is beyond CI time (benchmarks/bench_variants.py); the first 20 levels
    hold both witnesses."""
    model = load_model(MODELS_DIR / "variants" / "snapshots.yaml")
    system = ProtocolSystem(model)
    result = explore(system, reachable=system.reachable, max_depth=20)
    assert result.violated is None
    assert not result.unreached and set(result.witnesses) == set(model.reachable)
    last = result.witnesses["caught_up_by_snapshot"][-1]
    assert last[0].name == "HandleInstallSnapshotRequest"
    assert isinstance(last[0].message, snapshots.InstallSnapshotRequest)
