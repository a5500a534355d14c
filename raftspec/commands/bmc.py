"""``raftspec bmc``: bounded model checking of a YAML model with Z3 (checker.symbolic)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import attrs
import z3

from raftspec.checker.report import counterexample_json, counterexample_text
from raftspec.checker.symbolic import ENGINES, BmcResult, DepthReport, bmc
from raftspec.commands._contract import (
    FINDING,
    INCOMPLETE,
    OK,
    Stopped,
    add_budget_arguments,
    budget_of,
    exit_status,
    limit_z3_memory,
    why_stopped,
)
from raftspec.commands._estimate import refuse_if_symbolic_too_large
from raftspec.protocol import Protocol
from raftspec.protocol.errors import RaftspecError
from raftspec.spec.model import default_model_path, load_model

HELP = """\
Check every interleaving of up to DEPTH states (the initial state is depth 1) symbolically: the
transition relation of the reference, encoded in Z3 (spec/smt.py), is unrolled one step per
depth on one incremental solver and the model's invariants (and step properties) are checked at
each depth. The first violation found is a shortest one: the same depth as `raftspec check`.
Counterexamples print with the same renderer as `raftspec check`. Z3 bit-blasts the unrolling;
CaDiCaL searches it (`--engine z3`: Z3's own SAT core; same answers, several times slower on
deep models), and Z3 confirms every counterexample before it is printed.

What keeps deep depths within reach, none of which changes any violation's depth
(docs/symbolic.md has the arguments): adjacent steps that commute (different servers, at most
one of them touching the message bag) are explored in one order only; with `symmetry: true`
servers first act in the order 1, 2, 3, ...; a path never revisits a state within three steps;
the invariants and lemmas that are inductive for this very model (found by Houdini, so a
mutant's broken property is left out) are asserted on every state; and once a depth is found
violation-free, the checked properties are asserted on its state. `--no-reduction` turns all of
this off.

Budgets: --time-limit (alias --time-budget) and --max-memory; when one runs out, or on Ctrl-C,
the depths checked so far are reported and the exit status is 3: DEPTH was not reached.

""" + exit_status("a property is violated; 0 = no violation on any path of up to DEPTH states",
                  '; --json: "complete": false, "depth" = the deepest depth checked, '
                  '"stopped" = why') + "\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bmc", help="bounded model checking of a YAML model (Z3 encoding, CaDiCaL search)",
        description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("model", nargs="?", type=Path,
                        help=f"model file (default: the bundled {default_model_path().name})")
    parser.add_argument("--depth", type=int, default=10, metavar="K",
                        help="check paths of up to K states (default 10)")
    add_budget_arguments(parser, ("--time-limit", "--time-budget"))
    parser.add_argument("--invariant", action="append", metavar="NAME",
                        help="check only this property (repeatable; default: the model's)")
    parser.add_argument("--json", action="store_true",
                        help="print exactly one JSON object (for scripts and CI)")
    parser.add_argument("--quiet", action="store_true", help="no per-depth progress lines")
    parser.add_argument("--no-reduction", action="store_true",
                        help="plain BMC: no path reduction, no inferred invariants")
    parser.add_argument("--engine", choices=ENGINES, default="cadical",
                        help="who searches the bit-blasted unrolling: CaDiCaL (default, several "
                             "times faster) or Z3 alone (the cross-check)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    budget = budget_of(args)
    if args.depth < 1:
        raise RaftspecError(f"must be at least 1 (got {args.depth})", field="--depth")
    model = load_model(args.model if args.model is not None else default_model_path())
    names = tuple(args.invariant) if args.invariant else model.invariants
    refuse_if_symbolic_too_large(model.config)
    limit_z3_memory(budget.memory)
    from raftspec.spec import smt

    enc = smt.encode_model(model)
    invariants = [n for n in names if n not in enc.step_properties]
    step_properties = [n for n in names if n in enc.step_properties]

    done: list[DepthReport] = []

    def on_depth(r: DepthReport) -> None:
        done.append(r)
        if not (args.quiet or args.json):
            print(f"depth {r.depth:3d}: no violation  ({r.seconds:.2f} s, "
                  f"total {r.total_seconds:.1f} s)", file=sys.stderr, flush=True)
        if r.depth < args.depth and (why := budget.exceeded()):
            raise Stopped(why)

    started = time.perf_counter()
    stopped = None
    try:
        # Always a time budget, if only NO_LIMIT: with one, CaDiCaL runs in conflict slices
        # (checker/cnf.py), between which Python sees a Ctrl-C; without, a depth can take
        # minutes before the interrupt is noticed.
        result = bmc(enc, invariants, step_properties, max_depth=args.depth,
                     symmetry=model.symmetry, reduce=not args.no_reduction,
                     engine=args.engine, time_budget=args.time_limit or NO_LIMIT,
                     on_depth=on_depth)
        if not result.complete:
            stopped = f"time limit of {args.time_limit or NO_LIMIT:g} s reached"
    except (KeyboardInterrupt, Stopped, z3.Z3Exception) as err:
        stopped = why_stopped(err)
        if stopped is None:
            raise
        result = BmcResult("ok", done[-1].depth if done else 0, None, None,
                           time.perf_counter() - started, tuple(done), complete=False)
    result = attrs.evolve(result, complete=result.complete and stopped is None)
    if args.json:
        print(json.dumps(json_report(model.name, result, model.protocol, args.depth, stopped)))
    else:
        print_summary(model.name, result, names, model.protocol, args.depth, stopped)
    if result.violated is not None:
        return FINDING
    return OK if result.complete else INCOMPLETE


NO_LIMIT = 10.0**6
"""Seconds (11.6 days): a budget that does not run out, and whose milliseconds still fit the
solvers' 32-bit timeout."""


def json_report(name: str, result: BmcResult, protocol: Protocol,
                requested: int | None = None, stopped: str | None = None) -> dict:
    """model, verdict (ok, violation, incomplete), depth (checked, or the counterexample's),
    requested_depth, complete, stopped, violated, counterexample, seconds."""
    return {
        "model": name,
        "verdict": result.verdict if result.complete else "incomplete",
        "depth": result.depth,
        "requested_depth": requested,
        "complete": result.complete,
        "stopped": None if result.complete else stopped,
        "violated": result.violated,
        "counterexample": counterexample_json(result.trace, protocol) if result.trace else None,
        "seconds": round(result.seconds, 4),
    }


def print_summary(name: str, result: BmcResult, names: tuple[str, ...],
                  protocol: Protocol, requested: int | None = None,
                  stopped: str | None = None) -> None:
    if result.strengthening is not None:
        st = result.strengthening
        print(f"asserted on every state: {len(st.invariants)} invariants proved inductive for "
              f"this model in {st.seconds:.1f} s; not inductive here: "
              f"{', '.join(st.dropped) or 'none'}")
    if not result.complete:
        print(f"{name}: INCOMPLETE ({stopped}): no violation of "
              f"{', '.join(names) or 'nothing'} on any path of up to {result.depth} states, but "
              f"depth {requested} was not reached ({result.seconds:.1f} s)")
        return
    if result.violated is None:
        print(f"{name}: no violation of {', '.join(names) or 'nothing'} on any path of up to "
              f"{result.depth} states ({result.seconds:.1f} s)")
        return
    assert result.trace is not None
    print(f"{name}: {result.violated} is violated after {result.depth} states "
          f"({result.seconds:.1f} s); a shortest counterexample:")
    print(counterexample_text(result.trace, protocol))
