"""Symbolic checking with Z3: bounded model checking and (k-)induction over a protocol's
symbolic encoding (``spec.smt`` for raft.tla and its mutants).

BMC unrolls the transition relation one step at a time on one incremental solver (the path
constraints stay asserted; each depth's property query is an assumption), so depth K is
checked after depths 1..K-1 and the first violation found is a SHORTEST one — the same depth the
explicit BFS reports. Counterexamples are decoded into the protocol's states and ``Action``
records, so ``checker.report`` renders both engines' results.

The driver knows no protocol: an encoding (``SymbolicEncoding``) brings the variables, the
initial and transition formulas, the properties, the lemmas and each action's footprint.

Induction proves an invariant for ALL depths within the bounds: it holds initially (base) and
every action preserves it together with its lemmas (step); k-induction assumes it on k
consecutive states. Depths count states, as in ``raftspec check`` (the initial state is depth 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs
import z3

from raftspec.checker.cnf import CadicalSolver
from raftspec.protocol import Action
from raftspec.protocol.errors import RaftspecError

Trace = list[tuple[Action | None, Any]]
Formula = Callable[..., z3.BoolRef]


class SymbolicEncoding(Protocol):
    """What the driver needs of a protocol's symbolic encoding of one bounded model
    (``spec.smt.Encoding`` is raft.tla's)."""

    invariants: dict[str, Formula]
    step_properties: dict[str, Formula]
    lemmas: dict[str, Formula]
    shipped_lemmas: dict[str, tuple[str, ...]]

    def state_vars(self, tag: str) -> Any: ...
    def init(self, s: Any) -> z3.BoolRef: ...
    def bounds(self, s: Any) -> z3.BoolRef: ...
    def domain(self, s: Any) -> z3.BoolRef: ...
    def type_ok(self, s: Any) -> z3.BoolRef: ...
    def step(self, pre: Any, post: Any) -> Any: ...
    def solver(self) -> z3.Solver: ...
    def num(self, name: str) -> Any: ...
    def lit(self, k: int) -> Any: ...
    def footprint(self, name: str, server: int) -> tuple[int, bool]: ...
    def decode(self, model: z3.ModelRef, s: Any) -> Any: ...
    def decode_action(self, model: z3.ModelRef, step: Any, pre_state: Any) -> Action: ...

ENGINES = ("cadical", "z3")
"""BMC's SAT search: CaDiCaL on Z3's bit-blasting (``checker.cnf``), or Z3 alone."""


@attrs.frozen
class DepthReport:
    """Progress of one BMC depth: paths of ``depth`` states checked in ``seconds``."""

    depth: int
    seconds: float
    total_seconds: float


@attrs.frozen
class Strengthening:
    """Invariants proved inductive for one model (``houdini``), asserted on every BMC state."""

    invariants: tuple[str, ...]
    dropped: tuple[str, ...]
    seconds: float


@attrs.frozen
class BmcResult:
    """``depth`` = deepest bound fully checked (ok) or the counterexample's length in states."""

    verdict: str
    depth: int
    violated: str | None
    trace: Trace | None
    seconds: float
    per_depth: tuple[DepthReport, ...] = ()
    strengthening: Strengthening | None = None
    complete: bool = True          # False: max_depth not reached (time_budget ran out)


def _check_properties(enc: SymbolicEncoding, invariants: Sequence[str],
                      step_properties: Sequence[str]) -> None:
    unknown = [n for n in invariants if n not in enc.invariants]
    unknown += [n for n in step_properties if n not in enc.step_properties]
    if unknown:
        known = sorted({*enc.invariants, *enc.step_properties})
        raise RaftspecError(f"unknown property {unknown[0]!r}; known: {', '.join(known)}")


def independent(a: tuple[int, bool], b: tuple[int, bool]) -> bool:
    """Whether two footprints commute: different actors, at least one of them local (see the
    encoding's ``footprint``)."""
    return a[0] != b[0] and not (a[1] and b[1])


class PathReduction:
    """Constraints that shrink BMC's search without changing the shortest violation depth.

    Each step gets an ``actor`` and a ``bag`` flag (its footprint). Partial-order reduction: two
    adjacent independent steps, neither of them the last, must run in increasing actor order.
    Symmetry breaking (only when the model declares server symmetry): servers first act in
    the order 1, 2, 3, ... No short cycles: a state other than the last differs from the
    ``CYCLE`` states before it.

    Why the shortest violation depth is unchanged: BMC reaches depth K only when no path of
    fewer states violates a property. Among all paths obtained from a shortest counterexample
    by renaming servers and swapping adjacent independent steps before the last one, take the
    least by its sequence of actors. Every such path has the same length and violates the same
    property at its end (renamings preserve Init, Next and the properties; swaps keep the last
    transition). In the least one no adjacent independent pair is out of order (swapping would
    give a smaller sequence), servers first act in increasing order (renaming the first
    out-of-order one would give a smaller sequence), and no state but the last repeats (cutting
    out the cycle would leave a shorter counterexample with the same last transition). So it
    satisfies every constraint below.
    """

    CYCLE = 3
    """Cycles of up to this many steps are excluded (the common ones: a no-op action, a message
    and its reply)."""

    def __init__(self, enc: SymbolicEncoding, symmetry: bool) -> None:
        self.enc = enc
        self.symmetry = symmetry
        self.states: list[Any] = []
        self.actors: list[z3.ExprRef] = []
        self.bags: list[z3.BoolRef] = []
        self.highest: z3.ExprRef = enc.lit(0)

    def add_step(self, step: Any, tag: str) -> list[z3.BoolRef]:
        """The constraints to assert once ``step`` is appended to the path."""
        actor, bag = self.enc.num(f"{tag}_actor"), z3.Bool(f"{tag}_bag")
        cs = []
        for sel, br in zip(step.selectors, step.branches, strict=True):
            who, uses_bag = self.enc.footprint(br.name, br.server)
            cs.append(z3.Implies(sel, z3.And(actor == who, bag == uses_bag)))
        if self.symmetry:
            cs.append(z3.Or(actor == 0, actor <= self.highest + 1))
            highest = self.enc.num(f"{tag}_highest")
            cs.append(highest == z3.If(actor > self.highest, actor, self.highest))
            self.highest = highest
        if len(self.actors) >= 2:  # the previous step is no longer the last: order it
            a, b = self.actors[-2], self.actors[-1]
            swappable = z3.And(a != b, z3.Not(z3.And(self.bags[-2], self.bags[-1])))
            cs.append(z3.Implies(swappable, a < b))
        # step.pre is no longer the last state: it differs from the states just before it.
        cs += [z3.Not(_same_state(earlier, step.pre)) for earlier in self.states[-self.CYCLE:]]
        self.states.append(step.pre)
        self.actors.append(actor)
        self.bags.append(bag)
        return cs


def candidate(enc: SymbolicEncoding, name: str) -> Callable[[Any, Any], z3.BoolRef]:
    """A Houdini candidate's formula by name: ``domain``, a property or a lemma."""
    if name == "domain":
        return lambda enc, s: enc.domain(s)
    return enc.lemmas.get(name) or enc.invariants[name]


def candidates(enc: SymbolicEncoding) -> tuple[str, ...]:
    """What ``houdini`` starts from: the encoding's domain box, every invariant and every
    lemma."""
    return ("domain", *enc.invariants, *enc.lemmas)


def houdini(enc: SymbolicEncoding, names: Sequence[str] | None = None) -> Strengthening:
    """The largest subset of ``candidates`` whose conjunction is inductive for this model: it
    holds initially and every action from an in-bounds state satisfying all of it leads to a
    state satisfying all of it (Houdini: drop whatever a counterexample falsifies, repeat).

    Every reachable state satisfies the result, so asserting it on BMC's states removes no
    path; it only tells the solver facts it would otherwise rediscover at every depth. On a
    mutant model the violated property and the lemmas the mutant breaks are dropped.
    """
    start = time.perf_counter()
    names = candidates(enc) if names is None else tuple(names)
    kept = list(names)
    s0 = enc.state_vars("h0")
    solver = enc.solver()
    solver.add(enc.init(s0))
    kept = [n for n in kept if solver.check(z3.Not(candidate(enc, n)(enc, s0))) == z3.unsat]
    pre, post = enc.state_vars("h1"), enc.state_vars("h2")
    solver = enc.solver()
    solver.add(enc.bounds(pre), enc.step(pre, post).formula)
    flags = {n: z3.Bool(f"h_assume_{n}") for n in kept}
    for name, flag in flags.items():
        solver.add(z3.Implies(flag, candidate(enc, name)(enc, pre)))
    while kept:
        goals = {n: candidate(enc, n)(enc, post) for n in kept}
        solver.push()
        solver.add(z3.Or([z3.Not(g) for g in goals.values()]))
        verdict = solver.check(*[flags[n] for n in kept])
        if verdict == z3.unknown:
            _raise_stop(solver.reason_unknown())
            raise RaftspecError(f"Z3 gave up inferring invariants: {solver.reason_unknown()}")
        model = solver.model() if verdict == z3.sat else None
        solver.pop()
        if model is None:
            break
        kept = [n for n in kept if not z3.is_false(model.eval(goals[n], model_completion=True))]
    dropped = tuple(n for n in names if n not in kept)
    return Strengthening(tuple(kept), dropped, time.perf_counter() - start)


def bmc(
    enc: SymbolicEncoding,
    invariants: Sequence[str],
    step_properties: Sequence[str] = (),
    *,
    max_depth: int,
    symmetry: bool = False,
    reduce: bool = True,
    engine: str = "cadical",
    time_budget: float | None = None,
    on_depth: Callable[[DepthReport], None] | None = None,
) -> BmcResult:
    """Bounded model checking of every path of up to ``max_depth`` states within the bounds.

    ``symmetry``: the model declares its servers interchangeable (break that symmetry);
    ``reduce``: apply ``PathReduction``, assert ``houdini``'s invariants on every state, and
    assert the checked properties on every state of a depth already found violation-free (off:
    plain BMC, to measure what they gain or to rule them out). The last is sound because every
    prefix of a path is a path: once no path of up to d states violates a property, every state
    at position d of any longer path satisfies it. It tells the solver what a mutant's broken
    property (which Houdini must drop) still guarantees on the way to its violation.
    ``engine``: who searches the bit-blasted unrolling, ``ENGINES`` (same answers, checked by
    tests; CaDiCaL is several times faster, Z3 alone is the reference).
    ``time_budget`` (seconds) stops when it runs out, abandoning the depth under way and
    reporting the deepest depth completed (the benchmark's "depth reached in N minutes").
    A Ctrl-C is a KeyboardInterrupt (also from inside a solver call) and Z3 out of memory a
    ``z3.Z3Exception``, for the caller to turn into a partial result (``on_depth`` has seen the
    depths done).
    """
    if max_depth < 1:
        raise RaftspecError(f"--depth must be at least 1 (got {max_depth})", field="depth")
    _check_properties(enc, invariants, step_properties)
    if engine not in ENGINES:
        raise RaftspecError(f"unknown engine {engine!r}; known: {', '.join(ENGINES)}",
                            field="engine")
    start = time.perf_counter()
    solver = enc.solver() if engine == "z3" else CadicalSolver()
    states = [enc.state_vars("s0")]
    steps: list[Any] = []
    solver.add(enc.init(states[0]))
    reduction = PathReduction(enc, symmetry) if reduce else None
    strengthening = houdini(enc) if reduce else None

    def known_facts(state: Any) -> list[z3.BoolRef]:
        if strengthening is None:
            return []
        return [candidate(enc, n)(enc, state) for n in strengthening.invariants]

    solver.add(*known_facts(states[0]))
    reports: list[DepthReport] = []
    for depth in range(1, max_depth + 1):
        t0 = time.perf_counter()
        if depth > 1:
            nxt = enc.state_vars(f"s{depth - 1}")
            step = enc.step(states[-1], nxt)
            solver.add(step.formula)
            if reduction is not None:
                solver.add(*reduction.add_step(step, f"s{depth - 1}"))
            solver.add(*known_facts(nxt))
            states.append(nxt)
            steps.append(step)
        goals = [(name, enc.invariants[name](enc, states[-1])) for name in invariants]
        if depth > 1:
            goals += [(name, enc.step_properties[name](enc, states[-2], states[-1]))
                      for name in step_properties]
        if goals:
            bad = z3.Bool(f"bad_at_{depth}")  # assumed for this depth's query only
            solver.add(z3.Implies(bad, z3.Or([z3.Not(g) for _, g in goals])))
            if time_budget is not None:
                left = start + time_budget - time.perf_counter()
                solver.set("timeout", max(1, int(left * 1000)))
            verdict = solver.check(bad)
            if verdict == z3.sat:
                model = solver.model()
                violated = next(name for name, g in goals
                                if z3.is_false(model.eval(g, model_completion=True)))
                trace = decode_trace(enc, model, states, steps)
                return BmcResult("violation", depth, violated, trace,
                                 time.perf_counter() - start, tuple(reports), strengthening)
            if verdict != z3.unsat:
                if time_budget is not None and ("timeout" in solver.reason_unknown()
                                                or time.perf_counter() - start >= time_budget):
                    # out of time during this depth: it does not count as checked (the solver's
                    # timeout is whole milliseconds and may fire just before the budget's end)
                    break
                _raise_stop(solver.reason_unknown())
                raise RaftspecError(f"{engine} gave up at depth {depth}: "
                                    f"{solver.reason_unknown()}")
            solver.add(z3.Not(bad))
            if reduce:  # no path of up to `depth` states violates them: a fact about this state
                solver.add(*[g for _, g in goals])
        now = time.perf_counter()
        report = DepthReport(depth, now - t0, now - start)
        reports.append(report)
        if on_depth is not None:
            on_depth(report)
        if time_budget is not None and now - start > time_budget:
            break
    checked = reports[-1].depth if reports else 0
    return BmcResult("ok", checked, None, None, time.perf_counter() - start,
                     tuple(reports), strengthening, complete=checked >= max_depth)


def _raise_stop(reason: str) -> None:
    """A solver's "unknown" that is a stop, not a failure: Ctrl-C caught inside Z3, or Z3's
    memory ceiling (``memory_max_size``), raised as the exceptions a caller handles."""
    if "interrupt" in reason or "cancel" in reason:
        raise KeyboardInterrupt
    if "memory" in reason:
        raise z3.Z3Exception("out of memory")


def decode_trace(enc: SymbolicEncoding, model: z3.ModelRef, states: Sequence[Any],
                 steps: Sequence[Any]) -> Trace:
    """A Z3 model of a path as (Action, state) pairs, Init first (action None)."""
    decoded = [enc.decode(model, s) for s in states]
    trace: Trace = [(None, decoded[0])]
    for k, step in enumerate(steps):
        trace.append((enc.decode_action(model, step, decoded[k]), decoded[k + 1]))
    return trace


# --- induction -----------------------------------------------------------------------------------

@attrs.frozen
class ActionCheck:
    """The inductive step restricted to one action: preserved, or a counterexample."""

    action: str
    preserved: bool
    seconds: float
    broken: str | None = None
    cti: Trace | None = None


@attrs.frozen
class InductionResult:
    """Base case and inductive step; ``cti`` is a counterexample to induction (k+1 states,
    the hypothesis holding on the first k and the named conjunct ``broken`` failing on the last)."""

    invariant: str
    lemmas: tuple[str, ...]
    k: int
    base_ok: bool
    base_trace: Trace | None
    base_violated: str | None
    actions: tuple[ActionCheck, ...]
    seconds: float

    @property
    def proved(self) -> bool:
        return self.base_ok and all(a.preserved for a in self.actions)


def resolve_lemmas(enc: SymbolicEncoding, invariant: str,
                   names: Sequence[str]) -> tuple[str, ...]:
    """Lemma names as given; ``shipped`` expands to the lemma set shipped for ``invariant``."""
    shipped, lemmas = enc.shipped_lemmas, enc.lemmas
    out: list[str] = []
    for name in names:
        if name == "shipped":
            if invariant not in shipped:
                raise RaftspecError(f"no lemma set is shipped for {invariant!r}; shipped sets: "
                                    f"{', '.join(sorted(shipped))}", field="--with")
            out += [n for n in shipped[invariant] if n not in out]
        elif name in lemmas or name in enc.invariants:
            if name not in out:
                out.append(name)
        else:
            raise RaftspecError(f"unknown lemma {name!r}; known: shipped, "
                                f"{', '.join(sorted({*lemmas, *enc.invariants}))}",
                                field="--with")
    return tuple(out)


def _conjuncts(enc: SymbolicEncoding, s: Any, invariant: str,
               lemmas: Sequence[str]) -> list[tuple[str, z3.BoolRef]]:
    """The induction hypothesis on one state, as named conjuncts: the encoding's domain, the
    type invariant, the lemmas and the invariant itself."""
    out = [("domain", enc.domain(s)), ("type_ok", enc.type_ok(s))]
    for name in lemmas:
        if name != "type_ok":
            out.append((name, candidate(enc, name)(enc, s)))
    if invariant not in [n for n, _ in out]:
        out.append((invariant, enc.invariants[invariant](enc, s)))
    return out


def induct(
    enc: SymbolicEncoding,
    invariant: str,
    lemmas: Sequence[str] = (),
    *,
    k: int = 1,
    on_action: Callable[[ActionCheck], None] | None = None,
) -> InductionResult:
    """Check that ``invariant`` (with ``lemmas``) is k-inductive within the model's bounds.

    Base: every path from Init of up to k states satisfies the hypothesis. Step: for each action
    (raft.tla ``Next`` disjunct), k consecutive in-bounds states satisfying the hypothesis and
    pairwise distinct (simple path, k > 1) cannot step to a state violating it.
    """
    if invariant not in enc.invariants:
        raise RaftspecError(f"unknown invariant {invariant!r}; known: "
                            f"{', '.join(enc.invariants)}", field="--invariant")
    if k < 1:
        raise RaftspecError(f"--k must be at least 1 (got {k})", field="--k")
    lemmas = resolve_lemmas(enc, invariant, lemmas)
    start = time.perf_counter()

    # Base case: BMC of the whole hypothesis for k states.
    base = bmc_hypothesis(enc, invariant, lemmas, k)
    if base is not None:
        violated, trace = base
        return InductionResult(invariant, lemmas, k, False, trace, violated, (),
                               time.perf_counter() - start)

    states = [enc.state_vars(f"p{t}") for t in range(k + 1)]
    solver = enc.solver()
    steps = []
    for t in range(k):
        solver.add(enc.bounds(states[t]))
        solver.add(z3.And([c for _, c in _conjuncts(enc, states[t], invariant, lemmas)]))
        step = enc.step(states[t], states[t + 1])
        solver.add(step.formula)
        steps.append(step)
    for a in range(k):
        for b in range(a + 1, k):
            solver.add(z3.Not(_same_state(states[a], states[b])))
    last = steps[-1]
    post = _conjuncts(enc, states[k], invariant, lemmas)
    solver.add(z3.Or([z3.Not(c) for _, c in post]))
    checks = []
    for action in _action_names(last):
        t0 = time.perf_counter()
        chosen = [sel for sel, br in zip(last.selectors, last.branches, strict=True)
                  if br.name == action]
        others = [z3.Not(sel) for sel, br in zip(last.selectors, last.branches, strict=True)
                  if br.name != action]
        verdict = solver.check(*others, z3.Or(chosen)) if chosen else z3.unsat
        if verdict == z3.unknown:
            _raise_stop(solver.reason_unknown())
            raise RaftspecError(f"Z3 gave up on {action}: {solver.reason_unknown()}")
        if verdict == z3.sat:
            model = solver.model()
            broken = next(name for name, c in post
                          if z3.is_false(model.eval(c, model_completion=True)))
            check = ActionCheck(action, False, time.perf_counter() - t0, broken,
                                decode_trace(enc, model, states, steps))
        else:
            check = ActionCheck(action, True, time.perf_counter() - t0)
        checks.append(check)
        if on_action is not None:
            on_action(check)
    return InductionResult(invariant, lemmas, k, True, None, None, tuple(checks),
                           time.perf_counter() - start)


def bmc_hypothesis(enc: SymbolicEncoding, invariant: str, lemmas: Sequence[str],
                   k: int) -> tuple[str, Trace] | None:
    """The base case: the first conjunct violated on a path of at most k states, or None."""
    solver = enc.solver()
    states = [enc.state_vars("b0")]
    steps: list[Any] = []
    solver.add(enc.init(states[0]))
    for depth in range(1, k + 1):
        if depth > 1:
            nxt = enc.state_vars(f"b{depth - 1}")
            step = enc.step(states[-1], nxt)
            solver.add(step.formula)
            states.append(nxt)
            steps.append(step)
        goals = _conjuncts(enc, states[-1], invariant, lemmas)
        solver.push()
        solver.add(z3.Or([z3.Not(c) for _, c in goals]))
        verdict = solver.check()
        if verdict == z3.unknown:     # never taken for "no base-case violation"
            _raise_stop(solver.reason_unknown())
            raise RaftspecError(f"Z3 gave up on the base case: {solver.reason_unknown()}")
        if verdict == z3.sat:
            model = solver.model()
            name = next(n for n, c in goals if z3.is_false(model.eval(c, model_completion=True)))
            return name, decode_trace(enc, model, states, steps)
        solver.pop()
    return None


def _action_names(step: Any) -> list[str]:
    names: list[str] = []
    for br in step.branches:
        if br.name not in names:
            names.append(br.name)
    return names


def _same_state(a: Any, b: Any) -> z3.BoolRef:
    return z3.And([x == y for x, y in zip(a.values(), b.values(), strict=True)])
