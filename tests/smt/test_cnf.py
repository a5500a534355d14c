"""The CaDiCaL backend (checker.cnf) against Z3 itself, on random bit-vector formulas added in
batches (a constant shared between batches must stay one constant), and BMC's two engines
against each other."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from raftspec.checker.cnf import CadicalSolver
from raftspec.checker.symbolic import bmc, houdini
from raftspec.reference import RaftspecError
from raftspec.spec import smt
from raftspec.spec.model import load_model

MODELS = Path(__file__).resolve().parents[2] / "spec" / "models"
WIDTH = 4
NAMES = ("x", "y", "z")


def _term(draw) -> z3.BitVecRef:
    kind = draw(st.sampled_from(["const", "var", "add", "sub", "ite"]))
    if kind == "const":
        return z3.BitVecVal(draw(st.integers(-8, 7)), WIDTH)
    if kind == "var":
        return z3.BitVec(draw(st.sampled_from(NAMES)), WIDTH)
    a = z3.BitVec(draw(st.sampled_from(NAMES)), WIDTH)
    b = z3.BitVecVal(draw(st.integers(-8, 7)), WIDTH)
    if kind == "add":
        return a + b
    if kind == "sub":
        return a - z3.BitVec(draw(st.sampled_from(NAMES)), WIDTH)
    return z3.If(z3.Bool(draw(st.sampled_from(["p", "q"]))), a, b)


@st.composite
def atoms(draw) -> z3.BoolRef:
    a, b = _term(draw), _term(draw)
    rel = draw(st.sampled_from(["eq", "lt", "le", "ne", "bool"]))
    if rel == "bool":
        return z3.Bool(draw(st.sampled_from(["p", "q"])))
    return {"eq": a == b, "lt": a < b, "le": a <= b, "ne": a != b}[rel]


@st.composite
def clauses(draw) -> z3.BoolRef:
    lits = draw(st.lists(atoms(), min_size=1, max_size=3))
    negate = draw(st.lists(st.booleans(), min_size=len(lits), max_size=len(lits)))
    return z3.Or([z3.Not(a) if n else a for a, n in zip(lits, negate, strict=True)])


@settings(max_examples=300, deadline=None)
@given(batches=st.lists(st.lists(clauses(), min_size=1, max_size=4), min_size=1, max_size=4),
       assume_p=st.booleans())
def test_same_verdicts_as_z3_batch_by_batch(batches, assume_p) -> None:
    """After every batch, CaDiCaL and Z3 agree on satisfiability (under an assumption, too), and
    a CaDiCaL model is one Z3 confirms."""
    ours, ref = CadicalSolver(), z3.SolverFor("QF_BV")
    p = z3.Bool("p")
    assumption = (p,) if assume_p else ()
    for batch in batches:
        ours.add(*batch)
        ref.add(*batch)
        verdict = ours.check(*assumption)
        assert verdict == ref.check(*assumption)
        if verdict == z3.sat:
            model = ours.model()
            assert all(z3.is_true(model.eval(c, model_completion=True))
                       for c in ref.assertions())
            if assume_p:
                assert z3.is_true(model.eval(p, model_completion=True))


def test_a_constant_is_the_same_in_every_batch() -> None:
    x = z3.BitVec("x", WIDTH)
    solver = CadicalSolver()
    solver.add(x == 3)
    assert solver.check() == z3.sat
    solver.add(x != 3)  # a separate batch: the two mentions of x must clash
    assert solver.check() == z3.unsat


def test_assumptions_must_be_boolean_constants() -> None:
    solver = CadicalSolver()
    with pytest.raises(RaftspecError, match="not a Boolean constant"):
        solver.check(z3.Not(z3.Bool("p")))
    with pytest.raises(RaftspecError, match="not a Boolean constant"):
        solver.check(z3.BoolVal(False))


@pytest.mark.parametrize("name,depth", [("mutant_quorum_off_by_one", 12),
                                        ("mutant_vote_without_log_check", 14)])
def test_both_engines_give_the_same_answer(name: str, depth: int) -> None:
    """CaDiCaL and Z3 find the same depth and property (the quorum mutant's violation at 11) or
    both no violation (the vote mutant up to 14), each trace decoded by Z3."""
    model = load_model(MODELS / f"{name}.yaml")
    invariants = [n for n in model.invariants if n != "leader_append_only"]
    results = [bmc(smt.encode_model(model), invariants, ["leader_append_only"], max_depth=depth,
                   symmetry=model.symmetry, engine=engine) for engine in ("cadical", "z3")]
    ours, ref = results
    assert (ours.verdict, ours.depth, ours.violated) == (ref.verdict, ref.depth, ref.violated)
    if ours.trace is not None:
        assert len(ours.trace) == len(ref.trace) == ours.depth


def test_unknown_engine_is_a_clear_error() -> None:
    model = load_model(MODELS / "mutant_quorum_off_by_one.yaml")
    with pytest.raises(RaftspecError, match="unknown engine 'minisat'"):
        bmc(smt.encode_model(model), ["election_safety"], max_depth=2, engine="minisat")


def test_quantified_formulas_are_refused() -> None:
    x = z3.BitVec("x", WIDTH)
    with pytest.raises(RaftspecError, match="quantifier-free"):
        CadicalSolver().add(z3.ForAll([x], x + 0 == x))


def test_a_check_that_runs_out_of_time_answers_unknown() -> None:
    """Factoring a 40-bit prime is unsatisfiable and far beyond 0.2 s of CaDiCaL."""
    x, y = z3.BitVec("x", 40), z3.BitVec("y", 40)
    solver = CadicalSolver()
    solver.add(z3.ZeroExt(40, x) * z3.ZeroExt(40, y) == 1_099_511_627_689,
               z3.UGT(x, 1), z3.UGT(y, 1))
    solver.set("timeout", 200)
    assert solver.check() == z3.unknown
    assert solver.reason_unknown() == "timeout"


@pytest.mark.parametrize("engine", ["cadical", "z3"])
def test_a_time_budget_stops_bmc_mid_depth(engine: str) -> None:
    """With a budget far below what depth 40 needs, BMC stops when it runs out and reports the
    deepest depth it completed."""
    enc = smt.encode_model(load_model(MODELS / "mutant_no_term_check_on_append.yaml"))
    # The budget covers the Houdini strengthening that precedes depth 1 (3 s of it on a slow CI
    # machine): give it that, measured here, twice over, plus 3 s for the unrolling.
    t0 = time.perf_counter()
    houdini(enc)
    budget = 2 * (time.perf_counter() - t0) + 3.0
    result = bmc(enc, ["state_machine_safety"], max_depth=40, symmetry=True,
                 engine=engine, time_budget=budget)
    assert result.verdict == "ok"
    assert 1 <= result.depth < 40
    assert result.depth == result.per_depth[-1].depth
    assert result.seconds < 60  # not a speed target: without the deadline this runs for hours
