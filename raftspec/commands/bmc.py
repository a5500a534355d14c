"""``raftspec bmc``: bounded model checking of a YAML model with Z3 (checker.symbolic)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from raftspec.checker.report import counterexample_json, counterexample_text
from raftspec.checker.symbolic import ENGINES, BmcResult, DepthReport, bmc
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

Exit status: 0 no violation up to DEPTH, 1 a property is violated, 2 bad model or usage.
"""


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
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="stop when SECONDS have passed; the depth under way does not count")
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
    model = load_model(args.model if args.model is not None else default_model_path())
    names = tuple(args.invariant) if args.invariant else model.invariants
    if args.depth < 1:
        raise RaftspecError(f"must be at least 1 (got {args.depth})", field="--depth")
    from raftspec.spec import smt

    enc = smt.encode_model(model)
    invariants = [n for n in names if n not in enc.step_properties]
    step_properties = [n for n in names if n in enc.step_properties]

    def progress(r: DepthReport) -> None:
        print(f"depth {r.depth:3d}: no violation  ({r.seconds:.2f} s, "
              f"total {r.total_seconds:.1f} s)", file=sys.stderr, flush=True)

    result = bmc(enc, invariants, step_properties, max_depth=args.depth,
                 symmetry=model.symmetry, reduce=not args.no_reduction, engine=args.engine,
                 time_budget=args.time_budget,
                 on_depth=None if args.quiet or args.json else progress)
    if args.json:
        print(json.dumps(json_report(model.name, result, model.protocol)))
    else:
        print_summary(model.name, result, names, model.protocol)
    return 0 if result.violated is None else 1


def json_report(name: str, result: BmcResult, protocol: Protocol) -> dict:
    """The issue's shape: model, verdict, depth, violated, counterexample, seconds."""
    return {
        "model": name,
        "verdict": result.verdict,
        "depth": result.depth,
        "violated": result.violated,
        "counterexample": counterexample_json(result.trace, protocol) if result.trace else None,
        "seconds": round(result.seconds, 4),
    }


def print_summary(name: str, result: BmcResult, names: tuple[str, ...],
                  protocol: Protocol) -> None:
    if result.strengthening is not None:
        st = result.strengthening
        print(f"asserted on every state: {len(st.invariants)} invariants proved inductive for "
              f"this model in {st.seconds:.1f} s; not inductive here: "
              f"{', '.join(st.dropped) or 'none'}")
    if result.violated is None:
        print(f"{name}: no violation of {', '.join(names) or 'nothing'} on any path of up to "
              f"{result.depth} states ({result.seconds:.1f} s)")
        return
    assert result.trace is not None
    print(f"{name}: {result.violated} is violated after {result.depth} states "
          f"({result.seconds:.1f} s); a shortest counterexample:")
    print(counterexample_text(result.trace, protocol))
