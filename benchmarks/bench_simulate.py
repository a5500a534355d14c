"""Time for `raftspec simulate` to find each planted bug, per seed, and the shrunk lengths.

    python benchmarks/bench_simulate.py [--seeds 1,2,3,4,5] [--time-limit 60] [--baselines]
        [--only variants/membership_bug] [--replace-depth 3]

One process, one walk at a time (no --workers), the command's own settings (swarm weights and
restarts from cells, from the model's protocol's ``SimulationHints``; partitions; shrinking searches
that grow up to ``DEEP_SHRINK_NODES``, then replacements up to ``REPLACE_DEPTH``, which
``--replace-depth`` changes, 0: none), ``--partition 0`` as ``--no-partitions``; ``--only`` takes
model names relative to spec/models/. Per model and seed: seconds until the first violating walk
(the search alone), walks and steps taken (which, unlike seconds, do not depend on the machine's
load), the violated property, the violating walk's length and the shrunk counterexample's length (in
states, Init included, as `raftspec check` counts them), and the time shrinking took (shrinking
modulo renaming of the servers when the model has symmetry, as the command does;
``--compare-shrink`` also shrinks the same walk without renamings and prints that length).
``--baselines`` also runs, in the same run, the same swarm with fresh walks only
(``--fresh-walks``), and uniform walks: every walk from the initial state, choosing uniformly among
enabled action names and their instances (no swarm weights, no quiet-moment actions, no loop
escape), close to TLC's simulation mode. The machine is shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import time

from raftspec.checker.simulate import (
    DEEP_SHRINK_NODES,
    REPLACE_DEPTH,
    SimulationResult,
    SwarmSettings,
    shrink_trace,
    simulate,
)
from raftspec.checker.symmetry import renaming_of
from raftspec.checker.system import MessageLinks, ProtocolSystem
from raftspec.commands.simulate import SHRINK_SAFETY_NET
from raftspec.spec.model import MODELS_DIR, load_model

MUTANTS = (
    "mutant_quorum_off_by_one",
    "mutant_vote_without_log_check",
    "mutant_no_term_check_on_append",
    "mutant_commit_previous_term",
)
UNIFORM = SwarmSettings(omit=0.0, weight_range=0.0, escape=(0.0,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3,4,5")
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--depth", type=int, default=300)
    parser.add_argument("--max-walks", type=int,
                        help="stop a seed after this many walks (then --time-limit 0: no limit)")
    parser.add_argument("--only", help="comma-separated mutant model names")
    parser.add_argument("--baselines", action="store_true",
                        help="also run fresh swarm walks and uniform walks")
    parser.add_argument("--partition", type=float, default=SwarmSettings().partition,
                        help="probability that a walk cuts a server off for a stretch "
                             "(0: no partitions, the previous rounds' walks)")
    parser.add_argument("--partition-start", type=float,
                        default=SwarmSettings().partition_start,
                        help="a partition starts within this fraction of a walk's depth")
    parser.add_argument("--partition-length", type=float,
                        default=SwarmSettings().partition_length,
                        help="a partition lasts at most this fraction of a walk's depth")
    parser.add_argument("--shrink-nodes", type=int, default=DEEP_SHRINK_NODES,
                        help="largest shortcut search while shrinking (400: no growth)")
    parser.add_argument("--replace-depth", type=int, default=REPLACE_DEPTH,
                        help="longest path shrinking's last pass puts in place of a segment one "
                             "step longer (0: no such pass)")
    parser.add_argument("--no-shrink", dest="shrink", action="store_false",
                        help="time the search only (shrunk length: -)")
    parser.add_argument("--compare-shrink", action="store_true",
                        help="also shrink each violating walk without renamings")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    names = args.only.split(",") if args.only else MUTANTS
    print(f"load average before: {os.getloadavg()[0]:.1f}; time limit {args.time_limit:g} s; "
          f"depth {args.depth}; partition {args.partition:g}; replace depth {args.replace_depth}")
    print("| mutant | walks | seed | found (s) | walks | steps | property | walk length "
          "| shrunk length | shrink (s) | without renamings | load |")
    print("|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    for name in names:
        model = load_model(MODELS_DIR / f"{name}.yaml")
        system = ProtocolSystem(model, symmetry=False)
        hints = model.protocol.simulation
        renamings = renaming_of(model.protocol, model.config.servers) if model.symmetry else None
        swarm = SwarmSettings(omit_by_name=hints.rare, partition=args.partition,
                              partition_start=args.partition_start,
                              partition_length=args.partition_length)
        runs = [("swarm + cells", swarm, hints.cell)]
        if args.baselines:
            runs += [("swarm, fresh", swarm, None), ("uniform, fresh", UNIFORM, None)]
        for label, settings, cells in runs:
            for seed in seeds:
                walks: list[SimulationResult] = []
                r = simulate(system, seed=seed, depth=args.depth,
                             time_limit=args.time_limit or None, max_walks=args.max_walks,
                             action_name=ProtocolSystem.action_name, settings=settings, cells=cells,
                             renamings=renamings, links=MessageLinks(model.protocol.schema),
                             on_violation=walks.append, shrink=args.shrink,
                             shrink_nodes=args.shrink_nodes, shrink_time_limit=SHRINK_SAFETY_NET,
                             replace_depth=args.replace_depth)
                found = f"{r.seconds:.2f}" if r.violated else f"> {r.seconds:.0f}"
                plain = "-"
                if args.compare_shrink and walks and renamings is not None:
                    started = time.perf_counter()
                    shrunk, _, _ = shrink_trace(system, walks[0].trace, cells=cells,
                                                max_shortcut_nodes=args.shrink_nodes,
                                                replace_depth=args.replace_depth)
                    plain = f"{len(shrunk)} ({time.perf_counter() - started:.1f} s)"
                print(f"| {name} | {label} | {seed} | {found} | {r.walks:,} | {r.steps:,} | "
                      f"{r.violated or '-'} | {r.original_length or '-'} | "
                      f"{len(r.trace) if r.trace else '-'} | "
                      f"{r.shrink_seconds:.1f} | {plain} | {os.getloadavg()[0]:.1f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
