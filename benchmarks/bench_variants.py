"""The property matrix of every shipped variant model (``spec/models/variants/``), including
the deep ones CI does not run (``disruption_prevote_checkquorum.yaml``: over 1.28 million
distinct states, more than 16 minutes on a loaded 2-core machine; ``snapshots.yaml``: over
291,000), and the figures of the models beyond BFS.

    python benchmarks/bench_variants.py [--json] [MODEL ...]
    python benchmarks/bench_variants.py --deep [--seeds 0,1,2,3,4] [--time-limit 120]
        [--bfs-seconds 300]

The first form is ``raftspec matrix`` over the models (the README's matrix section was measured
this way); it leaves out ``DEEP`` models unless named. ``--deep`` measures those instead: per
model, BFS with a time budget (distinct states and depth reached when it stops) and
``raftspec simulate`` per seed (seconds to the first violation, walks, the shrunk
counterexample's length in states), in one process, one walk at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from raftspec.checker.explore import explore
from raftspec.checker.simulate import SwarmSettings, simulate
from raftspec.checker.system import ProtocolSystem
from raftspec.commands.matrix import check_model, matrix_json, matrix_text
from raftspec.spec.model import MODELS_DIR, load_model

VARIANTS = MODELS_DIR / "variants"
DEEP = ("membership.yaml", "membership_bug.yaml")
"""Models whose verdict BFS cannot reach in reasonable time (the July 2015 membership bug needs
47 states on four servers): measured by --deep, not in the matrix."""
DEFAULT = sorted(p for p in VARIANTS.glob("*.yaml") if p.name not in DEEP)


def deep(seeds: list[int], time_limit: float, bfs_seconds: float) -> None:
    print(f"load average before: {os.getloadavg()[0]:.1f}")
    print("| model | BFS in budget | simulate seed | found (s) | walks | property "
          "| shrunk length |")
    print("|---|---|---:|---:|---:|---|---:|")
    for name in DEEP:
        model = load_model(VARIANTS / name)
        system = ProtocolSystem(model)
        result = explore(system, deadline=time.perf_counter() + bfs_seconds)
        bfs = (f"{result.distinct_states:,} states, depth {result.depth}, "
               f"{'complete' if result.complete else f'stopped after {bfs_seconds:g} s'}"
               f"{f', violated {result.violated}' if result.violated else ''}")
        plain = ProtocolSystem(model, symmetry=False)
        hints = model.protocol.simulation
        for seed in seeds:
            r = simulate(plain, seed=seed, time_limit=time_limit,
                         action_name=ProtocolSystem.action_name,
                         settings=SwarmSettings(omit_by_name=hints.rare), cells=hints.cell)
            found = f"{r.seconds:.1f}" if r.violated else f"none in {time_limit:g}"
            length = len(r.trace) if r.violated else "-"
            print(f"| {name} | {bfs} | {seed} | {found} | {r.walks:,} | "
                  f"{r.violated or '-'} | {length} |", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", type=Path, default=DEFAULT)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--deep", action="store_true", help="measure the DEEP models")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--bfs-seconds", type=float, default=300.0)
    args = parser.parse_args()
    if args.deep:
        deep([int(s) for s in args.seeds.split(",")], args.time_limit, args.bfs_seconds)
        return 0
    rows = []
    for path in args.models:
        rows.append(check_model(load_model(path)))
        print(f"{path.name}: {rows[-1].seconds:.1f} s", file=sys.stderr, flush=True)
    print(json.dumps(matrix_json(rows)) if args.json else matrix_text(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
