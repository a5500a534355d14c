"""Reachability properties (``reachable: [...]``): every one found is reported with a real,
shortest witness path; one never reached fails ``check`` on its own."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import deque

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.spec.model import parse_model

SMALL = """
name: small
servers: 2
bounds: {max_term: 2, max_log_length: 1, max_messages: 1}
actions: {restart: false, duplicate: false, drop: false}
invariants: [election_safety, state_machine_safety]
"""


def _model(extra: str = "", text: str = SMALL):
    return parse_model(text + extra, "small.yaml")


def _bfs_depths(model) -> dict:
    """An independent plain BFS (no fingerprints, no symmetry): each state with its least
    depth, counted in states (the initial state is depth 1)."""
    system = ProtocolSystem(model)
    depth = {}
    queue = deque()
    for s in system.init_states():
        depth[s] = 1
        queue.append(s)
    while queue:
        s = queue.popleft()
        for _, nxt in model.protocol.steps(s, model.config):
            if system.constraint(nxt) and nxt not in depth:
                depth[nxt] = depth[s] + 1
                queue.append(nxt)
    return depth


DEPTHS = None


def _depths() -> dict:
    global DEPTHS
    if DEPTHS is None:
        DEPTHS = _bfs_depths(_model())
    return DEPTHS


def _check_witness(model, trace, holds) -> None:
    """A real path from Init, through enabled in-bounds steps, ending where ``holds`` first
    holds on it."""
    system = ProtocolSystem(model)
    assert trace[0][0] is None and trace[0][1] in list(system.init_states())
    for (_, before), (action, after) in zip(trace, trace[1:], strict=False):
        assert (action, after) in list(model.protocol.steps(before, model.config))
        assert system.constraint(after)
    assert holds(trace[-1][1])
    assert not any(holds(s) for _, s in trace[:-1])


@settings(max_examples=25, deadline=None)
@given(role=st.sampled_from([0, 1, 2]), term=st.integers(1, 3), commit=st.integers(0, 1),
       log=st.integers(0, 2), server=st.integers(1, 2))
def test_witness_is_shortest_or_the_predicate_is_unreachable(role, term, commit, log,
                                                             server) -> None:
    model = _model()

    def holds(state) -> bool:
        s = state.server(server)
        return (s.role == role and s.current_term >= term and s.commit_index >= commit
                and len(s.log) >= log)

    result = explore(ProtocolSystem(model), reachable={"p": holds})
    expected = [d for s, d in _depths().items() if holds(s)]
    if not expected:
        assert result.unreached == ("p",) and result.witnesses == {}
        return
    trace = result.witnesses["p"]
    assert len(trace) == min(expected)
    _check_witness(model, trace, holds)


def test_model_properties_are_found_with_witnesses() -> None:
    model = _model("reachable: [leader_elected, entry_committed, leader_changed]\n")
    system = ProtocolSystem(model)
    result = explore(system, reachable=system.reachable)
    assert set(result.witnesses) == {"leader_elected", "entry_committed"}
    assert result.unreached == ("leader_changed",)  # max_term 2: one election only
    for name, trace in result.witnesses.items():
        _check_witness(model, trace, system.reachable[name])


def test_a_violation_leaves_reachability_undetermined() -> None:
    model = _model("reachable: [leader_changed]\nmutants: [quorum_off_by_one]\n")
    system = ProtocolSystem(model)
    result = explore(system, reachable=system.reachable)
    assert result.violated == "election_safety" and result.unreached == ("leader_changed",)


def test_without_reachability_the_result_is_as_before() -> None:
    model = _model()
    plain = explore(ProtocolSystem(model))
    assert plain.witnesses is None and plain.unreached == ()
    asked = explore(ProtocolSystem(model), reachable={})
    assert attrs.evolve(asked, seconds=0, witnesses=None) == attrs.evolve(plain, seconds=0)


def raftspec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raftspec", *args], capture_output=True,
                          text=True, timeout=300)


def test_check_reports_witnesses_and_fails_on_never_reached(tmp_path) -> None:
    ok = tmp_path / "ok.yaml"
    ok.write_text(SMALL + "reachable: [leader_elected, entry_committed]\n")
    proc = raftspec("check", str(ok), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)["reachable"]
    assert report["leader_elected"]["status"] == "reached"
    witness = report["entry_committed"]["witness"]
    assert witness[0]["action"] == "Init" and len(witness) == report["entry_committed"]["depth"]
    assert any(s["commit_index"] > 0 for s in witness[-1]["state"]["servers"])

    never = tmp_path / "never.yaml"
    never.write_text(SMALL + "reachable: [leader_elected, leader_changed]\n")
    proc = raftspec("check", str(never))
    assert proc.returncode == 1, proc.stderr
    assert "REACHED leader_elected after" in proc.stdout
    assert "NEVER REACHED leader_changed" in proc.stdout
    assert proc.stdout.strip().splitlines()[-2].startswith("never reached: ")
    report = json.loads(raftspec("check", str(never), "--json").stdout)
    assert report["verdict"] == "never reached"
    assert report["reachable"]["leader_changed"]["status"] == "never reached"


def test_a_budget_stop_leaves_the_unreached_ones_unknown(tmp_path) -> None:
    """A property not reached before a budget stops the search is undetermined, in the JSON
    and in the text (before: "not reached within max depth" with no --max-depth, and nothing
    in the text)."""
    model = tmp_path / "ok.yaml"
    model.write_text(SMALL + "reachable: [leader_elected, entry_committed]\n")
    proc = raftspec("check", str(model), "--max-states", "100", "--workers", "1", "--json")
    assert proc.returncode == 3, proc.stderr
    report = json.loads(proc.stdout)["reachable"]
    assert report["leader_elected"]["status"] == "reached"
    assert report["entry_committed"]["status"] == "unknown"
    proc = raftspec("check", str(model), "--max-states", "100", "--workers", "1")
    assert proc.returncode == 3, proc.stderr
    assert ("reachability not determined (stopped at max_states 100 reached): entry_committed"
            in proc.stdout)


def test_unknown_reachability_property_is_a_one_line_error(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL + "reachable: [leader_elcted]\n")
    proc = raftspec("check", str(bad))
    assert proc.returncode == 2
    assert "bad.yaml" in proc.stderr and "reachable" in proc.stderr
    assert "leader_elcted" in proc.stderr and "Traceback" not in proc.stderr
