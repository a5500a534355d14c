"""``raftspec check``: exhaustive breadth-first model checking of a YAML model."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
from functools import partial
from pathlib import Path

from raftspec.checker.explore import Progress, Result, explore
from raftspec.checker.parallel import WorkerError
from raftspec.checker.report import (
    counterexample_json,
    counterexample_mermaid,
    counterexample_text,
    print_counterexample,
)
from raftspec.checker.system import ProtocolSystem
from raftspec.commands._contract import (
    FINDING,
    INCOMPLETE,
    OK,
    Budget,
    add_budget_arguments,
    budget_of,
    check_output,
    exit_status,
    positive_int,
)
from raftspec.commands._estimate import warn_if_large
from raftspec.protocol.errors import RaftspecError
from raftspec.spec.model import Model, default_model_path, load_model

HELP = """\
Explore every state of a bounded Raft model breadth first, checking its invariants on each
distinct state (and step properties on each step), counting states as TLC does. A violation is
reported with a SHORTEST counterexample.

A model's reachability properties (``reachable: [...]``) must each hold in some reachable state;
each is reported with a shortest witness path, and one never reached (after a complete search)
is a finding: exit 1.

Budgets: --time-limit, --max-states and --max-memory stop the search with the figures so far
(distinct states, depth reached) and exit 3; so does Ctrl-C or SIGTERM. --max-depth is a bound
you choose, like bmc's --depth: reaching it is a complete check of those levels (exit 0).

Workers: --workers N (default: the usable cores) shares the search among N processes, each
owning the states whose fingerprint falls in its shard; the figures, the counterexample and the
witnesses are exactly those of one worker (docs/scale.md). The search starts in one process and
hands over to the workers once a BFS level holds 500 states, so small models never pay for
starting them; --workers 1 never starts a process. --ray [ADDRESS] runs the shards as Ray
actors instead (a local Ray instance without ADDRESS; see docs/scale.md); Ray is an optional
extra: pip install 'raftspec[ray]'.

""" + exit_status("an invariant or step property is violated",
                  '; --json then has "complete": false and "stopped"') + "\n"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check", help="exhaustively model-check a YAML model (BFS)", description=HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "model", nargs="?", type=Path,
        help=f"model file (default: the bundled {default_model_path().name})",
    )
    sym = parser.add_mutually_exclusive_group()
    sym.add_argument("--symmetry", dest="symmetry", action="store_true", default=None,
                     help="count states up to renaming of servers (overrides the model)")
    sym.add_argument("--no-symmetry", dest="symmetry", action="store_false",
                     help="count every state (overrides the model)")
    parser.add_argument("--json", action="store_true",
                        help="print exactly one JSON object (for scripts and CI)")
    parser.add_argument("--per-action", action="store_true",
                        help="also count generated states per action (slower)")
    parser.add_argument("--max-depth", type=int, metavar="D",
                        help="check only the first D BFS levels (the initial state is level 1)")
    parser.add_argument("--max-states", type=positive_int, default=None, metavar="N",
                        help="stop after N distinct states (exit 3; default: none)")
    add_budget_arguments(parser)
    parser.add_argument("--workers", type=positive_int, default=None, metavar="N",
                        help="processes sharing the search (default: the usable cores, "
                        f"{usable_cores()} here; only once a BFS level holds 500 states)")
    parser.add_argument("--ray", nargs="?", const="local", default=None, metavar="ADDRESS",
                        help="shards as Ray actors: on the cluster at ADDRESS (e.g. "
                        "ray://head:10001 or auto), or a local Ray instance of --workers CPUs "
                        "without ADDRESS; --workers actors (default 2)")
    parser.add_argument("--mermaid", type=Path, metavar="FILE",
                        help="write a counterexample as a Mermaid sequence diagram to FILE")
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None,
                          help="show live progress even when not on a terminal")
    progress.add_argument("--quiet", dest="progress", action="store_false",
                          help="no live progress")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    budget = budget_of(args)
    if args.ray is not None and args.model is None and args.ray.endswith((".yaml", ".yml")):
        args.model, args.ray = Path(args.ray), "local"   # "--ray MODEL": no address given
    if args.max_depth is not None and args.max_depth < 1:
        raise RaftspecError(f"must be >= 1, got {args.max_depth}", field="--max-depth")
    check_output(args.mermaid, "--mermaid")
    model = load_model(args.model if args.model is not None else default_model_path())
    warn_if_large(model.config, "check")
    system = ProtocolSystem(model, symmetry=args.symmetry)
    show_progress = args.progress
    if show_progress is None:
        show_progress = sys.stderr.isatty() and not os.environ.get("CI") and not args.json

    rss_before = _peak_rss_bytes()
    # children that ended before the search count too (a launcher's, e.g. pyenv's shim: 3 MiB)
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    limits = {"max_depth": args.max_depth, "max_states": args.max_states,
              "should_stop": budget.exceeded, **_workers(args)}
    try:
        if show_progress:
            result = _explore_with_progress(system, args.per_action, limits)
        else:
            result = explore(system, count_actions=args.per_action,
                             action_name=system.action_name, reachable=system.reachable,
                             **limits)
    except WorkerError as err:
        if not err.killed:
            raise
        print(f"raftspec check: {err}; no verdict (exit 3)", file=sys.stderr)
        return INCOMPLETE
    peak_growth = max(_peak_rss_bytes() - rss_before, 0)
    children_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    worker_peak = children_peak * 1024 if children_peak > children_before else 0   # no worker

    if args.mermaid is not None and result.trace is not None:
        try:
            args.mermaid.write_text(counterexample_mermaid(result.trace, model.protocol) + "\n")
        except OSError as err:     # checked before the run; removed or made read-only since
            print(f"raftspec check: error: {args.mermaid}: cannot write: {err.strerror}",
                  file=sys.stderr)
    if args.json:
        report = _json_report(model, system, result, peak_growth, budget)
        report["workers"] = limits.get("workers", 1)
        report["peak_worker_memory_bytes"] = worker_peak
        print(json.dumps(report))
    else:
        _print_summary(model, system, result, peak_growth)
    if result.violated is not None or _never_reached(result):
        return FINDING
    return INCOMPLETE if _interrupted(result) else OK


def model_system(path: str, symmetry: bool | None) -> ProtocolSystem:
    """The system of a model file (what each Ray actor builds for itself)."""
    return ProtocolSystem(load_model(path), symmetry=symmetry)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform says)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _workers(args: argparse.Namespace) -> dict:
    """explore()'s keywords for --workers and --ray."""
    if args.ray is not None:
        from raftspec.checker.parallel_ray import ray_backend

        workers = args.workers or 2
        path = str(Path(args.model if args.model is not None else default_model_path())
                   .resolve())
        return {"workers": workers, "parallel_from": 1,
                "backend": ray_backend(None if args.ray == "local" else args.ray,
                                       partial(model_system, path, args.symmetry),
                                       num_cpus=workers)}
    workers = usable_cores() if args.workers is None else args.workers
    return {"workers": workers} if workers > 1 else {}


def _interrupted(result: Result) -> bool:
    """Stopped by a budget or an interrupt (not by the --max-depth the user chose)."""
    return not result.complete and result.stopped != "max_depth reached"


def _never_reached(result: Result) -> tuple[str, ...]:
    """The reachability properties this result shows unreached: only after a search that
    explored every state (after a violation, a budget or --max-depth it shows nothing)."""
    return result.unreached if result.violated is None and result.complete else ()


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _progress_line(p: Progress) -> str:
    rate = p.states_generated / p.seconds if p.seconds else 0.0
    return (f"distinct {p.distinct_states:,}  generated {p.states_generated:,}  "
            f"queue {p.queue:,}  depth {p.depth}  {rate:,.0f} states/s  {p.seconds:.0f} s")


def _explore_with_progress(system: ProtocolSystem, per_action: bool, limits: dict) -> Result:
    """A live status line on a terminal; elsewhere (forced with --progress) a line every 5 s."""
    if not sys.stderr.isatty():
        def log(p: Progress) -> None:
            print(_progress_line(p), file=sys.stderr, flush=True)

        return explore(system, on_progress=log, progress_interval=5.0,
                       count_actions=per_action, action_name=system.action_name,
                       reachable=system.reachable, **limits)

    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    console = Console(stderr=True)
    with Live(Text("starting…"), console=console, transient=True, refresh_per_second=4) as live:
        return explore(system, on_progress=lambda p: live.update(Text(_progress_line(p))),
                       count_actions=per_action, action_name=system.action_name,
                       reachable=system.reachable, **limits)


def _json_report(model: Model, system: ProtocolSystem, result: Result, peak: int,
                 budget: Budget) -> dict:
    """``complete``: the verdict covers what was asked (every state, or every state within
    --max-depth); when false, ``stopped`` says why and the counts say how far it got.
    ``exhaustive``: every reachable state was explored (false under --max-depth)."""
    incomplete = _interrupted(result)
    return {
        "model": model.name,
        "path": model.path,
        "symmetry": system.symmetry,
        "verdict": ("incomplete" if incomplete else
                    "never reached" if _never_reached(result) else result.verdict),
        "distinct_states": result.distinct_states,
        "states_generated": result.states_generated,
        "depth": result.depth,
        "complete": not incomplete,
        "stopped": result.stopped if incomplete else None,
        "exhaustive": result.complete,
        "budget": {"seconds": budget.seconds, "max_memory_bytes": budget.memory},
        "seconds": round(result.seconds, 4),
        "violated": result.violated,
        "counterexample": (
            counterexample_json(result.trace, model.protocol) if result.trace is not None else None
        ),
        "fingerprint_collision_probability": result.collision_probability,
        "peak_memory_growth_bytes": peak,
        "per_action": result.per_action,
        "reachable": _reachable_json(model, result),
    }


def _reachable_json(model: Model, result: Result) -> dict:
    """Per reachability property: reached (with depth and witness), never reached, not
    reached within the --max-depth chosen, or unknown (the search stopped at a violation, a
    budget or an interrupt before deciding it)."""
    out = {}
    witnesses = result.witnesses or {}
    for name in model.reachable:
        if name in witnesses:
            trace = witnesses[name]
            out[name] = {"status": "reached", "depth": len(trace),
                         "witness": counterexample_json(trace, model.protocol)}
        elif result.violated is not None or _interrupted(result):
            out[name] = {"status": "unknown", "depth": None, "witness": None}
        else:
            status = "never reached" if result.complete else "not reached within max depth"
            out[name] = {"status": status, "depth": None, "witness": None}
    return out


def _print_summary(model: Model, system: ProtocolSystem, result: Result, peak: int) -> None:
    c = model.config
    print(f"model {model.name} ({model.path}): {c.servers} servers, {c.values} value(s), "
          f"max_term {c.max_term}, max_log_length {c.max_log_length}, "
          f"max_messages {c.max_messages}, symmetry {'on' if system.symmetry else 'off'}")
    if c.mutants:
        print(f"mutants: {', '.join(sorted(c.mutants))}")
    checked = ", ".join(model.invariants) or "none"
    print(f"checked: {checked}")
    if model.reachable:
        print(f"reachable: {', '.join(model.reachable)}")
    if result.trace is not None:
        print(f"\nVIOLATION of {result.violated} after {len(result.trace)} states "
              f"(shortest counterexample):\n")
        print_counterexample(result.trace, model.protocol)
        print()
    _print_reachability(model, result)
    rate = result.states_generated / result.seconds if result.seconds else 0.0
    verdict = result.verdict
    if _interrupted(result):
        verdict = "INCOMPLETE"
        print(f"stopped before a verdict: {result.stopped}; no violation among the states "
              "explored so far (exit 3)")
    elif not result.complete:
        print(f"stopped at --max-depth {result.depth}: deeper states were not explored")
    elif _never_reached(result):
        verdict = "never reached"
    print(f"{verdict}: {result.distinct_states:,} distinct states, "
          f"{result.states_generated:,} generated, depth {result.depth}, "
          f"{result.seconds:.2f} s ({rate:,.0f} states/s)")
    print(f"fingerprint collision probability (optimistic): {result.collision_probability:.1e}"
          f"; peak memory growth {peak / 2**20:.1f} MiB")
    if result.per_action:
        print("generated per action:")
        for name, count in result.per_action.items():
            print(f"  {name:<30} {count:>12,}")


def _print_reachability(model: Model, result: Result) -> None:
    """Each reachability property: its shortest witness, or why it has none."""
    witnesses = result.witnesses or {}
    for name in model.reachable:
        if name in witnesses:
            trace = witnesses[name]
            print(f"\nREACHED {name} after {len(trace)} states (shortest witness):\n")
            print(counterexample_text(trace, model.protocol))
    for name in _never_reached(result):
        where = "" if result.complete else f" within --max-depth {result.depth}"
        print(f"\nNEVER REACHED {name}{where}: no explored state satisfies it "
              "(the model does not exercise it; a pass proves nothing about it)")
    unknown = [n for n in model.reachable if n not in witnesses]
    if unknown and (result.violated is not None or _interrupted(result)):
        why = "the violation" if result.violated is not None else result.stopped
        print(f"\nreachability not determined (stopped at {why}): {', '.join(unknown)}")
    if model.reachable:
        print()
