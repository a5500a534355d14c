"""The acceptance test: raftspec reproduces TLC's counts on raft.tla exactly.

Expected figures are TLC 2.20's, measured on Ongaro's raft.tla without history variables
(shared/conformance/raft-tla.md); per-action generated counts are from SEMANTICS.md. They are
copied here so the test runs in any clone; ``test_table_matches_shared_copy`` checks the copy.
"""

from __future__ import annotations

import re

import pytest

from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.spec.model import MODELS_DIR, load_model

# model: (distinct, generated, depth, distinct sym, generated sym, depth sym)
TLC = {
    "tiny2": (1_645, 12_861, 28, 831, 6_475, 28),
    "msgs2": (22_231, 210_801, 33, 11_139, 105_617, 33),
    "mid2": (46_207, 367_277, 46, 23_137, 183_814, 46),
    "tiny3": (61_805, 528_679, 40, 10_362, 88_594, 40),
}

ACTIONS = (
    "Init", "Restart", "Timeout", "RequestVote", "BecomeLeader", "ClientRequest",
    "AdvanceCommitIndex", "AppendEntries", "UpdateTerm", "HandleRequestVoteRequest",
    "DropStaleResponse", "HandleRequestVoteResponse", "HandleAppendEntriesRequest",
    "HandleAppendEntriesResponse", "DuplicateMessage", "DropMessage",
)
# Generated states per action (SEMANTICS.md), columns tiny2, msgs2, mid2, tiny3, in ACTIONS order.
PER_ACTION = {
    "tiny2": (1, 3290, 3042, 1984, 38, 248, 248, 248, 10, 556, 0, 440, 168, 80, 1254, 1254),
    "msgs2": (1, 44462, 40144, 15684, 464, 4318, 4318, 4318, 40, 12458, 0, 12566, 4834, 2466,
              32364, 32364),
    "mid2": (1, 92414, 85752, 62878, 1018, 6662, 6662, 6662, 1794, 14802, 636, 10290, 5396, 2158,
             35076, 35076),
    "tiny3": (1, 0, 143463, 151851, 12348, 41952, 41952, 83904, 276, 17502, 0, 17502, 11952,
              5976, 0, 0),
}


def _model(name: str):
    return load_model(MODELS_DIR / "conformance" / f"{name}.yaml")


@pytest.mark.parametrize("name", sorted(TLC))
def test_counts_equal_tlc_without_symmetry(name: str) -> None:
    system = ProtocolSystem(_model(name), symmetry=False)
    result = explore(system, count_actions=True, action_name=system.action_name)
    distinct, generated, depth = TLC[name][:3]
    assert result.violated is None
    assert (result.distinct_states, result.states_generated, result.depth) == (
        distinct, generated, depth,
    )
    per_action = {a: result.per_action.get(a, 0) for a in ACTIONS}
    assert per_action == dict(zip(ACTIONS, PER_ACTION[name], strict=True))


@pytest.mark.parametrize("name", sorted(TLC))
def test_counts_equal_tlc_with_symmetry(name: str) -> None:
    result = explore(ProtocolSystem(_model(name), symmetry=True))
    assert result.violated is None
    assert (result.distinct_states, result.states_generated, result.depth) == TLC[name][3:]


def test_conformance_models_have_the_rows_bounds(shared_dir) -> None:
    """Each conformance model file declares exactly the bounds of its row in the shared table."""
    rows = _shared_rows(shared_dir)
    assert set(rows) == set(TLC)
    for name, row in rows.items():
        config = _model(name).config
        n, max_term, max_log, max_msgs, rdd = row[:5]
        assert (config.servers, config.max_term, config.max_log_length, config.max_messages) == (
            int(n), int(max_term), int(max_log), int(max_msgs),
        )
        expected = tuple(flag == "on" for flag in rdd.split("/"))
        assert (config.restart, config.duplicate, config.drop) == expected


def test_table_matches_shared_copy(shared_dir) -> None:
    """The figures above are TLC's figures, as published in shared/conformance/raft-tla.md."""
    rows = _shared_rows(shared_dir)
    for name, row in rows.items():
        figures = tuple(int(x.replace(",", "")) for x in row[5:11])
        assert figures == TLC[name], name


def _shared_rows(shared_dir) -> dict[str, list[str]]:
    text = (shared_dir / "conformance" / "raft-tla.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 12 and re.fullmatch(r"[a-z]+\d", cells[0]):
            rows[cells[0]] = cells[1:]
    return rows
