"""An incremental SAT solver for Z3 formulas: Z3 bit-blasts, CaDiCaL searches.

BMC's queries are pure bit-vector formulas (spec/smt.py), which Z3 itself solves by
bit-blasting to its internal SAT solver. ``CadicalSolver`` keeps Z3 as the encoding and the
bit-blaster but hands the clauses to CaDiCaL (through python-sat), a SAT solver that is several
times faster on these unrollings (measured in benchmarks/bench_symbolic.py).

Each batch of constraints passed to ``add`` is bit-blasted on its own. So that one constant
means one thing in every batch, every bit-vector constant is first replaced by named Boolean
bits (``x@0`` ... ``x@w-1``, least significant first); Z3 keeps Boolean names in its DIMACS
output, and a name maps to one SAT variable for the solver's lifetime. Tseitin variables are
fresh in every batch.

The class offers the subset of ``z3.Solver`` that BMC uses (``add``, ``check`` under assumptions,
``model``, ``reason_unknown``). ``model`` does not trust the SAT side: it fixes every constant
to the value CaDiCaL found and asks Z3 to confirm all assertions (and the assumptions) under
that assignment, returning Z3's model, so a counterexample is decoded exactly as Z3's own.
"""

from __future__ import annotations

import z3
from pysat.solvers import Solver

from reference.errors import RaftspecError

SOLVER = "cadical195"
"""python-sat's name of the CaDiCaL version used."""

_BLAST = z3.Then("simplify", "bit-blast", "tseitin-cnf")
"""Tactics that keep every named Boolean constant (none eliminates variables, unlike
``solve-eqs``), so the names link batches."""


def _constants(exprs: list[z3.ExprRef]) -> list[z3.ExprRef]:
    """The uninterpreted constants in ``exprs`` (each once, in first-seen order)."""
    seen: set[int] = set()
    out: list[z3.ExprRef] = []
    stack = list(exprs)
    while stack:
        e = stack.pop()
        key = e.get_id()
        if key in seen:
            continue
        seen.add(key)
        if z3.is_const(e) and e.decl().kind() == z3.Z3_OP_UNINTERPRETED:
            out.append(e)
        else:
            stack.extend(e.children())
    return out


class CadicalSolver:
    """Incremental CaDiCaL on Z3-bit-blasted constraints (see the module docstring)."""

    def __init__(self) -> None:
        self._sat = Solver(name=SOLVER)
        self._ids: dict[str, int] = {}
        self._top = 0
        self._bits: dict[str, tuple[z3.BitVecRef, tuple[z3.BoolRef, ...]]] = {}
        self._bools: dict[str, z3.BoolRef] = {}
        self._names: set[str] = set()
        """Names that link batches: our bits and the formulas' Boolean constants (a name Z3
        makes up inside one batch stays local to it)."""
        self._assertions: list[z3.BoolRef] = []
        self._last: tuple[z3.BoolRef, ...] = ()

    def _fresh(self) -> int:
        self._top += 1
        return self._top

    def _blasted(self, c: z3.ExprRef) -> z3.ExprRef:
        """``c`` with every bit-vector constant replaced by its named bits."""
        pairs = []
        for x in _constants([c]):
            name = str(x)
            if z3.is_bv(x):
                if name not in self._bits:
                    bits = tuple(z3.Bool(f"{name}@{i}") for i in range(x.size()))
                    self._bits[name] = (x, bits)
                    self._names.update(str(b) for b in bits)
                bits = self._bits[name][1]
                one, zero = z3.BitVecVal(1, 1), z3.BitVecVal(0, 1)
                pairs.append((x, z3.Concat(*[z3.If(b, one, zero) for b in reversed(bits)])))
            elif z3.is_bool(x):
                self._bools.setdefault(name, x)
                self._names.add(name)
            else:
                raise RaftspecError(f"internal: the SAT backend cannot encode {x} ({x.sort()})")
        return z3.substitute(c, *pairs) if pairs else c

    def _var(self, name: str) -> int:
        if name not in self._ids:
            self._ids[name] = self._fresh()
        return self._ids[name]

    def add(self, *constraints: z3.BoolRef) -> None:
        if not constraints:
            return
        self._assertions += constraints
        goal = z3.Goal()
        goal.add(*[self._blasted(c) for c in constraints])
        (blasted,) = _BLAST(goal)
        lines = blasted.dimacs(include_names=True).splitlines()
        local: dict[int, int] = {}
        for line in lines:
            if line.startswith("c "):
                _, num, name = line.split(" ", 2)
                if name in self._names:
                    local[int(num)] = self._var(name)
        for line in lines:
            if line.startswith(("c", "p")):
                continue
            clause = []
            for token in line.split()[:-1]:
                lit = int(token)
                v = local.get(abs(lit))
                if v is None:
                    v = local[abs(lit)] = self._fresh()
                clause.append(v if lit > 0 else -v)
            self._sat.add_clause(clause)

    def check(self, *assumptions: z3.BoolRef) -> z3.CheckSatResult:
        """sat or unsat of everything added, under ``assumptions`` (named Boolean constants)."""
        lits = []
        for a in assumptions:
            if not (z3.is_const(a) and z3.is_bool(a)):
                raise RaftspecError(f"internal: assumption {a} is not a Boolean constant")
            lits.append(self._var(str(a)))
            self._bools.setdefault(str(a), a)
            self._names.add(str(a))
        self._last = assumptions
        return z3.sat if self._sat.solve(assumptions=lits) else z3.unsat

    def model(self) -> z3.ModelRef:
        """Z3's model of the assertions, with every constant fixed to CaDiCaL's value."""
        truth = set(lit for lit in self._sat.get_model() if lit > 0)
        fixed = []
        for name, x in self._bools.items():
            if name in self._ids:
                fixed.append(x == (self._ids[name] in truth))
        for x, bits in self._bits.values():
            value = sum(1 << i for i, b in enumerate(bits)
                        if str(b) in self._ids and self._ids[str(b)] in truth)
            fixed.append(x == z3.BitVecVal(value, x.size()))
        confirm = z3.SolverFor("QF_BV")
        confirm.add(*self._assertions, *self._last, *fixed)
        if confirm.check() != z3.sat:
            raise RaftspecError("internal: Z3 rejects the SAT solver's model")
        return confirm.model()

    def reason_unknown(self) -> str:
        return "CaDiCaL does not give up"
