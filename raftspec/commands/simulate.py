"""``raftspec simulate``: swarm random walks through a YAML model, for bugs too deep for BFS."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from raftspec.checker.report import (
    counterexample_json,
    counterexample_mermaid,
    print_counterexample,
)
from raftspec.checker.simulate import (
    DEEP_SHRINK_NODES,
    Interrupted,
    Progress,
    SimulationResult,
    SwarmSettings,
    simulate_parallel,
)
from raftspec.checker.symmetry import renaming_of
from raftspec.checker.system import MessageLinks, ProtocolSystem
from raftspec.commands._contract import (
    FINDING,
    INCOMPLETE,
    Budget,
    add_memory_argument,
    check_output,
    exit_status,
    seconds,
)
from raftspec.protocol.errors import RaftspecError
from raftspec.spec.model import Model, default_model_path, load_model

HELP = """\
Run random walks through a bounded Raft model, checking its invariants on every state (and step
properties on every step), until one is violated or the time limit ends. Each walk has its own
random "swarm" configuration (weights of the actions, some left for quiet moments), drawn from
--seed, and starts from a state met before: one per combination of the servers' terms, roles
and logs reached so far, the least explored first (--fresh-walks: always the initial state).
Most walks also cut one server about to send off from the others for a stretch of steps (a
network partition: its messages wait while the others go on; --no-partitions: none).
With one worker the same seed runs the same walks and finds the same trace. A violation is shrunk
(steps and loops dropped, segments replaced by shorter ones found by small searches, which grow when
they find nothing, also modulo renaming of the servers for a model with symmetry: true and at most
three servers, and last by any path of up to 3 steps for one a step longer, while it still
replays and still violates) and printed as `raftspec check` prints one; Ctrl-C or SIGTERM while
shrinking ends the shrinking, not the run: the shortest trace so far is printed (exit 1).
Reaches bugs far deeper than BFS (the paper's Figure 8, over 50 steps) but proves nothing
when it finds none.

In short: 1 a property is violated; 3 the time limit ended without a violation, or
--max-memory, Ctrl-C or SIGTERM stopped the walks (incomplete, not a proof): it then prints the
walks and steps done so far and, with --json, "complete": false and "stopped" saying why.

""" + exit_status("a property is violated; never 0: simulation proves nothing",
                  '; --json then has "complete": false and "stopped"') + "\n"

SHRINK_SAFETY_NET = 300.0
"""Seconds after which shrinking stops, as a safety net only: shrinking ends by its counts
first (measured with searches growing to 6,400 states, at load average about 2: Figure 8 in
13-17 s, the four-server membership bug in about 30 s), so that a seed gives the same trace on
a machine several times slower."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate", help="swarm random walks through a YAML model (deep bugs)",
        description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model", nargs="?", type=Path,
        help=f"model file (default: the bundled {default_model_path().name})",
    )
    parser.add_argument("--time-limit", type=seconds, default=60.0, metavar="S",
                        help="stop after S seconds without a violation (default: 60)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the walks' random choices (default: 0)")
    parser.add_argument("--depth", type=int, default=300, metavar="D",
                        help="longest walk, in steps (default: 300)")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="processes sharing the seed's walks (default: 1)")
    parser.add_argument("--fresh-walks", dest="cells", action="store_false",
                        help="start every walk from the initial state (by default walks also "
                        "restart from the terms, roles and logs met so far)")
    parser.add_argument("--partitions", action=argparse.BooleanOptionalAction, default=True,
                        help="nine walks in ten cut one server off from the others for a "
                        "stretch of steps (the default: finds a deposed leader's bugs sooner; "
                        "--no-partitions: the membership bug in fewer steps, see README)")
    parser.add_argument("--shrink-nodes", type=int, default=DEEP_SHRINK_NODES, metavar="N",
                        help="shrinking's shortcut searches grow (400, 1,600, ...) up to N "
                        "(>= 400) states when a round gains nothing (default: "
                        f"{DEEP_SHRINK_NODES:,}; 400: no growth, a faster shrinking, maybe "
                        "longer traces)")
    parser.add_argument("--no-shrink", dest="shrink", action="store_false",
                        help="print the violating walk as found, without shrinking it")
    parser.add_argument("--json", action="store_true",
                        help="print exactly one JSON object (for scripts and CI)")
    parser.add_argument("--mermaid", type=Path, metavar="FILE",
                        help="write a counterexample as a Mermaid sequence diagram to FILE")
    add_memory_argument(parser)
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show progress even when not on a terminal")
    progress.add_argument("--quiet", dest="progress", action="store_false",
                          help="no progress")
    parser.set_defaults(run=run)


def _positive(value: float, flag: str, *, low: float = 1) -> None:
    if value < low:
        raise RaftspecError(f"must be >= {low:g}, got {value:g}", field=flag)


def run(args: argparse.Namespace) -> int:
    budget = Budget(memory=args.max_memory)
    _positive(args.depth, "--depth")
    _positive(args.workers, "--workers")
    _positive(args.seed, "--seed", low=0)
    _positive(args.shrink_nodes, "--shrink-nodes", low=400)
    check_output(args.mermaid, "--mermaid")
    model = load_model(args.model if args.model is not None else default_model_path())
    hints = model.protocol.simulation
    show_progress = args.progress
    if show_progress is None:
        show_progress = sys.stderr.isatty() and not os.environ.get("CI") and not args.json
    watch = _Watch(_progress if show_progress else None)
    try:
        result = simulate_parallel(
            partial(_system, model), args.workers, seed=args.seed,
            time_limit=args.time_limit, depth=args.depth, shrink=args.shrink,
            shrink_nodes=args.shrink_nodes, shrink_time_limit=SHRINK_SAFETY_NET,
            action_name=ProtocolSystem.action_name,
            settings=SwarmSettings(omit_by_name=hints.rare),
            cells=hints.cell if args.cells else None,
            links=MessageLinks(model.protocol.schema) if args.partitions else None,
            renamings=renaming_of(model.protocol, model.config.servers) if model.symmetry
            else None,
            on_progress=watch, progress_interval=watch.INTERVAL, should_stop=budget.exceeded,
        )
        stopped = None if result.violated is not None else (
            f"time limit of {args.time_limit:g} s reached")
    except KeyboardInterrupt as stop:
        exact = stop if isinstance(stop, Interrupted) else None
        result = watch.partial(args.seed, exact.progress if exact is not None else None)
        stopped = exact.reason if exact is not None and exact.reason else "interrupted"
    if show_progress:
        print(file=sys.stderr)
    if args.mermaid is not None and result.trace is not None:
        try:
            args.mermaid.write_text(counterexample_mermaid(result.trace, model.protocol) + "\n")
        except OSError as err:     # checked before the run; removed or made read-only since
            print(f"raftspec simulate: error: {args.mermaid}: cannot write: {err.strerror}",
                  file=sys.stderr)
    if args.json:
        print(json.dumps(_json_report(model, args, result, stopped)))
    else:
        _print_summary(model, args, result, stopped)
    return INCOMPLETE if result.violated is None else FINDING


class _Watch:
    """The engine's progress callback: remembers the last figures (what a run stopped before
    the engine could hand over its exact ones reports) and shows progress every 2 s when asked.
    The --max-memory budget is the engine's ``should_stop``: a run it stops reports the exact
    figures of the walks completed, and keeps a violation a worker was shrinking."""

    INTERVAL = 0.5
    """Seconds between callbacks, and between two looks at the memory budget (the engine asks
    between walks)."""

    def __init__(self, show: Callable[[Progress], None] | None) -> None:
        self.show = show
        self.last = Progress(0, 0, 0.0)
        self.started = time.perf_counter()
        self.next_show = self.started + 2.0

    def __call__(self, p: Progress) -> None:
        self.last = p
        if self.show is not None and time.perf_counter() >= self.next_show:
            self.next_show = time.perf_counter() + 2.0
            self.show(p)

    def partial(self, seed: int, exact: Progress | None = None) -> SimulationResult:
        """The figures of a run stopped before its end: walks and steps as the engine counted
        them when stopped (``exact``), else as last reported (an interrupt before the engine
        ran its walks); seconds as measured here."""
        last = exact if exact is not None else self.last
        return SimulationResult(seed=seed, walks=last.walks, steps=last.steps,
                                seconds=time.perf_counter() - self.started)


def _system(model: Model) -> ProtocolSystem:
    """Walks need exact states (a walk's loops), not symmetry classes. (In a worker process,
    --workers, Ctrl-C and SIGTERM are the parent's to handle: ``simulate_parallel``'s workers
    ignore the one and die of the other.)"""
    return ProtocolSystem(model, symmetry=False)


def _progress(p: Progress) -> None:
    rate = p.steps / p.seconds if p.seconds else 0.0
    line = f"walks {p.walks:,}  steps {p.steps:,}  {rate:,.0f} steps/s  {p.seconds:.0f} s"
    end = "\r" if sys.stderr.isatty() else "\n"
    print(line, end=end, file=sys.stderr, flush=True)


def _json_report(model: Model, args: argparse.Namespace, result: SimulationResult,
                 stopped: str | None) -> dict:
    """``complete`` is true only with a violation (a finding); without one ``stopped`` says
    what ended the search."""
    return {
        "model": model.name,
        "path": model.path,
        "verdict": result.verdict,
        "complete": result.violated is not None,
        "stopped": stopped,
        "violated": result.violated,
        "counterexample": (
            counterexample_json(result.trace, model.protocol) if result.trace is not None else None
        ),
        "seed": args.seed,
        "depth": args.depth,
        "workers": args.workers,
        "fresh_walks": not args.cells,
        "partitions": args.partitions,
        "time_limit": args.time_limit,
        "walks": result.walks,
        "steps": result.steps,
        "seconds": round(result.seconds, 4),
        "walk": result.walk,
        "walk_length": result.original_length,
        "counterexample_length": len(result.trace) if result.trace is not None else None,
        "shrink_seconds": round(result.shrink_seconds, 4),
        "shrink_stopped": result.shrink_stopped,
    }


def _print_summary(model: Model, args: argparse.Namespace, result: SimulationResult,
                   stopped: str | None) -> None:
    c = model.config
    print(f"model {model.name} ({model.path}): {c.servers} servers, {c.values} value(s), "
          f"max_term {c.max_term}, max_log_length {c.max_log_length}, "
          f"max_messages {c.max_messages}")
    if c.mutants:
        print(f"mutants: {', '.join(sorted(c.mutants))}")
    print(f"checked: {', '.join(model.invariants) or 'none'}")
    print(f"seed {args.seed}, depth {args.depth}, time limit {args.time_limit:g} s, "
          f"{args.workers} worker(s)")
    rate = result.steps / result.seconds if result.seconds else 0.0
    if result.trace is not None:
        shrunk = ("" if not args.shrink else
                  f", shrunk to {len(result.trace)} states in {result.shrink_seconds:.1f} s")
        if result.shrink_stopped == "interrupted":
            shrunk += " before shrinking was interrupted"
        elif result.shrink_stopped is not None:   # a budget: its reason
            shrunk += f" before shrinking stopped: {result.shrink_stopped}"
        print(f"\nVIOLATION of {result.violated} found by walk {result.walk} after "
              f"{result.seconds:.2f} s (walk prefix {result.original_length} states{shrunk}):\n")
        print_counterexample(result.trace, model.protocol)
        print()
        print(f"violation: {result.walks:,} walks, {result.steps:,} steps, "
              f"{result.seconds:.2f} s ({rate:,.0f} steps/s)")
    else:
        print(f"incomplete ({stopped}): no violation in {result.seconds:.1f} s: "
              f"{result.walks:,} walks, {result.steps:,} steps ({rate:,.0f} steps/s); "
              "simulation is not a proof")
