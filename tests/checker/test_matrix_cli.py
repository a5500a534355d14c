"""``raftspec matrix``: one row per model, one cell per property, each cell what ``check``
finds for that property alone."""

from __future__ import annotations

import json
import subprocess
import sys

import attrs

from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.spec.model import load_model

MODEL = """
name: {name}
servers: 2
bounds: {{max_term: 2, max_log_length: 1, max_messages: 1}}
actions: {{restart: false, duplicate: false, drop: false}}
invariants: [election_safety, state_machine_safety, leader_append_only]
reachable: [leader_elected, leader_changed]
mutants: {mutants}
"""


def raftspec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raftspec", *args], capture_output=True,
                          text=True, timeout=300)


def _alone(model, name):
    """``check`` of one property alone (the reference for a cell)."""
    return explore(ProtocolSystem(attrs.evolve(model, invariants=(name,), reachable=())))


def test_matrix_cells_are_each_property_checked_alone(tmp_path) -> None:
    mutant = tmp_path / "mutant.yaml"
    mutant.write_text(MODEL.format(name="buggy", mutants="[quorum_off_by_one]"))
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(MODEL.format(name="fixed", mutants="[]").replace(
        "[leader_elected, leader_changed]", "[leader_elected]"))
    (tmp_path / "partial.yaml").write_text(MODEL.format(name="partial", mutants="[]").replace(
        "election_safety, state_machine_safety, leader_append_only", "election_safety"))
    proc = raftspec("matrix", str(mutant), str(fixed), str(tmp_path / "partial.yaml"),
                    "--json")
    assert proc.returncode == 1, proc.stderr  # a violation and a never-reached cell
    report = json.loads(proc.stdout)
    assert report["properties"] == ["election_safety", "state_machine_safety",
                                    "leader_append_only", "leader_elected", "leader_changed"]
    rows = {row["model"]: row for row in report["models"]}
    assert rows["buggy"]["protocol"] == "raft.tla + quorum_off_by_one"
    for name in ("buggy", "fixed", "partial"):
        model = load_model(tmp_path / f"{'mutant' if name == 'buggy' else name}.yaml")
        for prop in ("election_safety", "state_machine_safety", "leader_append_only"):
            got = rows[name]["cells"][prop]
            if prop not in model.invariants:
                assert got["status"] == "not checked"
                continue
            alone = _alone(model, prop)
            if alone.violated:
                assert (got["status"], got["depth"]) == ("violated", alone.depth)
                assert got["text"] == f"violated at depth {alone.depth}"
            else:
                assert (got["status"], got["states"]) == ("ok", alone.distinct_states)
    assert rows["buggy"]["cells"]["election_safety"]["status"] == "violated"
    assert rows["buggy"]["runs"] == 2
    assert rows["fixed"]["cells"]["leader_elected"]["status"] == "reached"
    assert rows["fixed"]["cells"]["leader_changed"]["status"] == "not checked"
    assert rows["partial"]["cells"]["leader_changed"]["status"] == "never reached"


def test_matrix_text_has_a_row_per_model_and_exit_0_when_all_pass(tmp_path) -> None:
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text(MODEL.format(name="fixed", mutants="[]").replace(
        "[leader_elected, leader_changed]", "[leader_elected]"))
    proc = raftspec("matrix", str(fixed))
    assert proc.returncode == 0, proc.stderr
    header, rule, row = proc.stdout.splitlines()
    assert header.split()[:3] == ["model", "protocol", "bounds"]
    assert "leader_elected (reach)" in header and header.rstrip().endswith("time")
    assert row.startswith("fixed") and "reached at depth" in row and "ok (" in row


def test_matrix_bad_model_exits_2(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    proc = raftspec("matrix", str(bad))
    assert proc.returncode == 2 and "bad.yaml" in proc.stderr
    assert "Traceback" not in proc.stderr
