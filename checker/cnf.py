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
``model``, ``set("timeout", ms)``, ``reason_unknown``). ``model`` does not trust the SAT side:
it fixes every constant to the value CaDiCaL found and asks Z3 to confirm all assertions (and
the assumptions) under that assignment, returning Z3's model, so a counterexample is decoded
exactly as Z3's own.
"""

from __future__ import annotations

import time

import z3
from pysat.solvers import Solver

from raftspec.protocol.errors import RaftspecError

SOLVER = "cadical195"
"""python-sat's name of the CaDiCaL version used."""

SLICE = 10_000
"""Conflicts per solver call under a timeout (python-sat cannot interrupt CaDiCaL, but it can
stop it after a conflict budget; learned clauses carry over to the next call)."""

_BLAST = z3.Then("simplify", "bit-blast", "tseitin-cnf")
"""Tactics that keep every named Boolean constant (none eliminates variables, unlike
``solve-eqs``), so the names link batches."""


def _constants(exprs: list[z3.ExprRef]) -> list[z3.ExprRef]:
    """The uninterpreted constants in ``exprs`` (each once). Walks Z3's C API directly: the
    Python wrappers cost more than the walk itself on BMC's formulas."""
    if not exprs:
        return []
    ctx = exprs[0].ctx
    ref = ctx.ref()
    seen: set[int] = set()
    out: list[z3.ExprRef] = []
    stack = [e.as_ast() for e in exprs]
    while stack:
        a = stack.pop()
        key = z3.Z3_get_ast_id(ref, a)
        kind = z3.Z3_get_ast_kind(ref, a)
        if kind == z3.Z3_QUANTIFIER_AST:
            raise RaftspecError("internal: the SAT backend takes quantifier-free formulas only")
        if key in seen or kind != z3.Z3_APP_AST:  # numerals
            continue
        seen.add(key)
        app = z3.Z3_to_app(ref, a)
        n = z3.Z3_get_app_num_args(ref, app)
        if n:
            stack.extend(z3.Z3_get_app_arg(ref, app, i) for i in range(n))
        elif z3.Z3_get_decl_kind(ref, z3.Z3_get_app_decl(ref, app)) == z3.Z3_OP_UNINTERPRETED:
            out.append(z3.z3._to_expr_ref(a, ctx))
    return out


class CadicalSolver:
    """Incremental CaDiCaL on Z3-bit-blasted constraints (see the module docstring)."""

    def __init__(self) -> None:
        self._sat = Solver(name=SOLVER)
        self._ids: dict[str, int] = {}
        self._top = 0
        self._bits: dict[str, tuple[z3.BitVecRef, tuple[z3.BoolRef, ...], z3.BitVecRef]] = {}
        """Per bit-vector constant: itself, its named bits, and the bits joined back."""
        self._bools: dict[str, z3.BoolRef] = {}
        self._names: set[str] = set()
        """Names that link batches: our bits and the formulas' Boolean constants (a name Z3
        makes up inside one batch stays local to it)."""
        self._assertions: list[z3.BoolRef] = []
        self._last: tuple[z3.BoolRef, ...] = ()
        self._timeout: float | None = None

    def _blasted(self, constraints: tuple[z3.BoolRef, ...]) -> z3.BoolRef:
        """The conjunction of ``constraints`` with every bit-vector constant replaced by its
        named bits."""
        pairs = []
        for x in _constants(list(constraints)):
            name = str(x)
            if z3.is_bv(x):
                if name not in self._bits:
                    bits = tuple(z3.Bool(f"{name}@{i}") for i in range(x.size()))
                    one, zero = z3.BitVecVal(1, 1), z3.BitVecVal(0, 1)
                    joined = z3.Concat(*[z3.If(b, one, zero) for b in reversed(bits)])
                    self._bits[name] = (x, bits, joined)
                    self._names.update(str(b) for b in bits)
                pairs.append((x, self._bits[name][2]))
            elif z3.is_bool(x):
                self._bools.setdefault(name, x)
                self._names.add(name)
            else:
                raise RaftspecError(f"internal: the SAT backend cannot encode {x} ({x.sort()})")
        conjunction = z3.And(constraints)
        return z3.substitute(conjunction, *pairs) if pairs else conjunction

    def _var(self, name: str) -> int:
        if name not in self._ids:
            self._top += 1
            self._ids[name] = self._top
        return self._ids[name]

    def add(self, *constraints: z3.BoolRef) -> None:
        if not constraints:
            return
        self._assertions += constraints
        goal = z3.Goal()
        goal.add(self._blasted(constraints))
        (blasted,) = _BLAST(goal)
        lines = blasted.dimacs(include_names=True).splitlines()
        size = next(int(line.split()[2]) for line in lines if line.startswith("p "))
        table = list(range(self._top, self._top + size + 1))  # batch-local: fresh variables
        self._top += size
        for line in lines:
            if line.startswith("c "):
                _, num, name = line.split(" ", 2)
                if name in self._names:
                    table[int(num)] = self._var(name)
        self._sat.append_formula(
            [[table[lit] if lit > 0 else -table[-lit] for lit in map(int, line.split()[:-1])]
             for line in lines if not line.startswith(("c", "p"))])

    def check(self, *assumptions: z3.BoolRef) -> z3.CheckSatResult:
        """sat or unsat of everything added, under ``assumptions`` (named Boolean constants)."""
        lits = []
        for a in assumptions:
            if not (z3.is_const(a) and z3.is_bool(a)
                    and a.decl().kind() == z3.Z3_OP_UNINTERPRETED):
                raise RaftspecError(f"internal: assumption {a} is not a Boolean constant")
            lits.append(self._var(str(a)))
            self._bools.setdefault(str(a), a)
            self._names.add(str(a))
        self._last = assumptions
        if self._timeout is None:
            return z3.sat if self._sat.solve(assumptions=lits) else z3.unsat
        deadline = time.perf_counter() + self._timeout
        while time.perf_counter() < deadline:
            self._sat.conf_budget(SLICE)
            verdict = self._sat.solve_limited(assumptions=lits)
            if verdict is not None:
                return z3.sat if verdict else z3.unsat
        return z3.unknown

    def set(self, option: str, value: int) -> None:
        """As ``z3.Solver.set``, for ``"timeout"`` only: milliseconds per ``check`` (0: none);
        a check that runs out answers unknown."""
        if option != "timeout":
            raise RaftspecError(f"internal: the SAT backend has no option {option!r}")
        self._timeout = value / 1000 if value else None

    def model(self) -> z3.ModelRef:
        """Z3's model of the assertions, with every constant fixed to CaDiCaL's value."""
        truth = set(lit for lit in self._sat.get_model() if lit > 0)
        fixed = []
        for name, x in self._bools.items():
            if name in self._ids:
                fixed.append(x == (self._ids[name] in truth))
        for x, bits, _ in self._bits.values():
            value = sum(1 << i for i, b in enumerate(bits)
                        if str(b) in self._ids and self._ids[str(b)] in truth)
            fixed.append(x == z3.BitVecVal(value, x.size()))
        confirm = z3.SolverFor("QF_BV")
        confirm.add(*self._assertions, *self._last, *fixed)
        if confirm.check() != z3.sat:
            raise RaftspecError("internal: Z3 rejects the SAT solver's model")
        return confirm.model()

    def reason_unknown(self) -> str:
        return "timeout"
