"""Explicit-state checker speed and memory on the conformance models, against a baseline.

For each conformance model, with and without symmetry, this runs ``raftspec check --json`` as a
whole process (interpreter start and imports included, as the targets are stated) and, as the
baseline measured in the same run, a straightforward BFS that keeps every reference ``State``
object in a Python set (no fingerprints, no invariants). Memory is the peak of Python
allocations during the exploration (tracemalloc, in a separate run of each, since tracing slows
it down) divided by the distinct states. It prints one table: distinct and generated states,
seconds, states/s, bytes per distinct state, and our/baseline ratios.

    python benchmarks/bench_checker.py [--models tiny2,mid2] [--repeat 3]

Targets (issue 2): tiny3 <= 3 s and mid2 <= 2 s whole process without symmetry; with symmetry
at most 3x the plain run's cost per distinct state; <= 200 bytes per distinct state.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "spec" / "models" / "conformance"
TLC_SECONDS = {"tiny2": 1.4, "mid2": 5.0, "tiny3": 9.0}  # published, 1 worker, same machine kind

BASELINE = """
import sys, time, tracemalloc
from collections import deque
from raftspec.spec.model import load_model
from raftspec.reference import initial_state, successors
config = load_model(sys.argv[1]).config
if sys.argv[2] == "trace":
    tracemalloc.start()
started = time.perf_counter()
init = initial_state(config.servers)
seen = {init}
queue = deque([init])
while queue:
    state = queue.popleft()
    for _, nxt in successors(state, config):
        if nxt not in seen:
            seen.add(nxt)
            queue.append(nxt)
peak = tracemalloc.get_traced_memory()[1] if tracemalloc.is_tracing() else 0
print(len(seen), peak, time.perf_counter() - started)
"""

MEMORY = """
import sys, tracemalloc
from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.spec.model import load_model
system = ProtocolSystem(load_model(sys.argv[1]), symmetry=sys.argv[2] == "on")
tracemalloc.start()
result = explore(system)
print(result.distinct_states, tracemalloc.get_traced_memory()[1])
"""


def run_ours(model: Path, symmetry: bool) -> tuple[dict, float]:
    flag = "--symmetry" if symmetry else "--no-symmetry"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "raftspec", "check", str(model), flag, "--json", "--quiet"],
        capture_output=True, text=True, cwd=ROOT,
    )
    wall = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        raise SystemExit(f"raftspec check failed on {model}:\n{proc.stderr}")
    return json.loads(proc.stdout), wall


def run_baseline(model: Path, mode: str) -> tuple[int, int, float]:
    """(distinct, peak traced bytes or 0, whole-process seconds) of the naive BFS."""
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", BASELINE, str(model), mode],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    wall = time.perf_counter() - started
    distinct, peak, _ = proc.stdout.split()
    return int(distinct), int(peak), wall


def peak_bytes(model: Path, symmetry: bool) -> int:
    """Peak bytes allocated by raftspec's exploration (tracemalloc), in its own process."""
    proc = subprocess.run([sys.executable, "-c", MEMORY, str(model), "on" if symmetry else "off"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    return int(proc.stdout.split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny2,msgs2,mid2,tiny3")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement; the fastest is reported (default 3)")
    args = parser.parse_args()

    header = (f"{'model':<7} {'sym':<4} {'distinct':>9} {'generated':>10} {'seconds':>8} "
              f"{'distinct/s':>11} {'generated/s':>12} {'B/distinct':>11} "
              f"{'base s':>7} {'time ratio':>10} {'mem ratio':>9} {'TLC s':>6}")
    print(header)
    print("-" * len(header))
    plain_cost: dict[str, float] = {}
    for name in args.models.split(","):
        model = MODELS / f"{name}.yaml"
        base_seconds = min(run_baseline(model, "time")[2] for _ in range(args.repeat))
        base_peak = run_baseline(model, "trace")[1]
        for symmetry in (False, True):
            report, wall = min((run_ours(model, symmetry) for _ in range(args.repeat)),
                               key=lambda r: r[1])
            distinct, generated = report["distinct_states"], report["states_generated"]
            peak = peak_bytes(model, symmetry)
            per_state = peak / distinct
            if not symmetry:
                plain_cost[name] = wall / distinct
            cost_note = f"  (cost/distinct = {wall / distinct / plain_cost[name]:.2f}x plain)" \
                if symmetry else ""
            print(
                f"{name:<7} {'on' if symmetry else 'off':<4} {distinct:>9,} {generated:>10,} "
                f"{wall:>8.2f} {distinct / wall:>11,.0f} {generated / wall:>12,.0f} "
                f"{per_state:>11.0f} {base_seconds:>7.2f} {wall / base_seconds:>10.2f} "
                f"{peak / base_peak:>9.2f} "
                f"{TLC_SECONDS.get(name, float('nan')) if not symmetry else float('nan'):>6.1f}"
                f"{cost_note}"
            )
    print("\nseconds: whole process, fastest of --repeat runs; base: naive BFS over a set of "
          "reference States (same run); ratios are ours/base; TLC s: published, not measured here")


if __name__ == "__main__":
    main()
