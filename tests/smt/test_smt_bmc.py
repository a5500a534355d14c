"""BMC against BFS on the mutant models (to the depth CI affords), the CLI's JSON and errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raftspec.checker.symbolic import bmc
from raftspec.checker.system import ProtocolSystem
from raftspec.cli import main
from raftspec.reference import Config, RaftspecError
from raftspec.spec import smt
from raftspec.spec.model import load_model

MODELS = Path(__file__).resolve().parents[2] / "spec" / "models"
MUTANTS = sorted(MODELS.glob("mutant_*.yaml"))

BMC_REACH = {
    "mutant_quorum_off_by_one": None,
    "mutant_vote_without_log_check": None,
    "mutant_no_term_check_on_append": 20,
    "mutant_commit_previous_term": 16,
}
"""How deep CI runs BMC on each mutant model: None = to BFS's shortest counterexample.
BFS cannot exhaust commit_previous_term's model at all; no_term_check_on_append's 32-state
counterexample takes BMC 5.5 minutes alone (over a quarter of CI), so CI checks it to depth 20
(no violation, as BFS) and ``benchmarks/bench_symbolic.py --only no_term`` finds it at 32."""


def _split(model) -> tuple[list[str], list[str]]:
    invariants = [n for n in model.invariants if n != "leader_append_only"]
    steps = [n for n in model.invariants if n == "leader_append_only"]
    return invariants, steps


def test_every_mutant_model_has_a_bmc_reach() -> None:
    assert set(BMC_REACH) == {p.stem for p in MUTANTS}


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_bmc_finds_the_depth_bfs_finds(path: Path, bfs) -> None:
    """Both engines report the same property at the same depth (or no violation up to the CI
    depth), and the BMC trace is a real path of the reference."""
    model = load_model(path)
    reach = BMC_REACH[path.stem]
    system = ProtocolSystem(model)
    found = bfs(path, max_depth=reach)
    invariants, steps = _split(model)
    sym = bmc(smt.encode_model(model), invariants, steps, max_depth=reach or found.depth + 1,
              symmetry=model.symmetry)
    if reach is not None:
        assert (found.violated, sym.violated) == (None, None)
        assert sym.depth == reach == found.depth
        return
    assert found.violated is not None
    assert sym.violated == found.violated
    assert sym.depth == len(sym.trace) == len(found.trace) == found.depth
    assert sym.trace[0][1] == next(iter(system.init_states()))
    for (_, before), (action, after) in zip(sym.trace, sym.trace[1:], strict=False):
        assert (action, after) in list(system.steps(before))


def test_bmc_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bmc", str(MODELS / "default.yaml"), "--depth", "4", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(out) == {"model", "verdict", "depth", "violated", "counterexample", "seconds",
                        "complete", "stopped", "requested_depth"}
    assert (out["verdict"], out["depth"], out["violated"], out["counterexample"]) == (
        "ok", 4, None, None)


def test_induct_cli_proves_and_reports_a_cti(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["induct", str(MODELS / "default.yaml"), "--invariant", "election_safety",
                 "--with", "shipped", "--quiet"]) == 0
    assert "inductive" in capsys.readouterr().out
    assert main(["induct", str(MODELS / "default.yaml"), "--invariant", "election_safety",
                 "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "not_inductive"
    assert out["cti"]["action"] == "BecomeLeader"
    assert len(out["cti"]["states"]) == 2


@pytest.mark.parametrize("argv, message", [
    (["bmc", str(MODELS / "default.yaml"), "--depth", "0"], "--depth"),
    (["bmc", str(MODELS / "default.yaml"), "--invariant", "nope"], "unknown property"),
    (["induct", str(MODELS / "default.yaml"), "--invariant", "nope"], "unknown invariant"),
    (["induct", str(MODELS / "default.yaml"), "--invariant", "log_matching", "--with", "x"],
     "unknown lemma"),
])
def test_user_mistakes_exit_2_with_a_message(argv: list[str], message: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_unsupported_model_features_are_refused_not_silently_ignored() -> None:
    with pytest.raises(RaftspecError, match="no encoder for action.s. Timeout, RequestVote"):
        bmc(smt.Encoding(Config(3, 1, 2, 1, 1, variant="figure2")), ["election_safety"],
            max_depth=2)
    with pytest.raises(RaftspecError, match="invented"):
        bmc(smt.Encoding(Config(3, 1, 2, 1, 1, mutants=frozenset({"invented"}))), [],
            max_depth=2)
