"""Explicit-state checker speed and memory on the conformance models, against two baselines.

For each model, with and without symmetry, this runs ``raftspec check --workers 1 --json`` as
a whole process (one process, like every baseline here; ``check`` alone uses every core) and,
measured in the same run:

- the independent tuple BFS (``benchmarks/tuple_bfs.py``: written from SEMANTICS.md alone, plain
  tuples, no attrs, 64-bit fingerprints, every property checked, TLC's counts reproduced): the
  "vs tuple BFS" ratio compares exploration CPU seconds (ours from ``--json``'s ``seconds``,
  which is CPU-bound; the baseline's from ``time.process_time``), so interpreter start-up and
  imports do not blur it;
- a naive BFS that keeps every reference ``State`` in a Python set (no fingerprints, no
  invariants), for the whole-process time and memory ratios. Memory is the peak of Python
  allocations during the exploration (tracemalloc, in a separate run of each, since tracing
  slows it down) divided by the distinct states.

    python benchmarks/bench_checker.py [--models tiny2,mid2] [--repeat 3] [--big]
        [--baseline-python /other/checkout/.venv/bin/python] [--floor]

``--baseline-python``: an interpreter that imports another checkout of raftspec (e.g. a
worktree of an older commit with its own editable install); its exploration CPU seconds are
measured in the same run, alternating with ours, and printed as "vs base".

``--floor``: instead of the table, where one state's time goes against the tuple BFS: the
generated ``expand`` alone, every row's enumerator alone and every action call alone, on the
model's distinct states.

``--big`` adds mid3 (benchmarks/models/mid3.yaml, 1.48M distinct states), without symmetry.
Targets (issue 2): tiny3 <= 3 s and mid2 <= 2 s whole process without symmetry; with symmetry
at most 3x the plain run's cost per distinct state; <= 200 bytes per distinct state. Protocols
as packages: not slower than before, and at most 1.0x the tuple BFS.
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
BIG = ROOT / "benchmarks" / "models" / "mid3.yaml"

OURS_CPU = """
import sys, time
from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.spec.model import load_model
system = ProtocolSystem(load_model(sys.argv[1]), symmetry=sys.argv[2] == "on")
started = time.process_time()
result = explore(system)
print(result.distinct_states, result.states_generated, time.process_time() - started)
"""

TUPLE_BFS = """
import sys, time
sys.path.insert(0, sys.argv[1])
import tuple_bfs
from raftspec.spec.model import load_model
c = load_model(sys.argv[2]).config
started = time.process_time()
d, g, depth = tuple_bfs.explore(c.servers, c.values, c.max_term, c.max_log_length,
                                c.max_messages, c.restart, c.duplicate, c.drop)
print(d, g, depth, time.process_time() - started)
"""

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


def tlc_column(name: str, symmetry: bool) -> str:
    """TLC's published seconds for the model's plain run, blank where there is none."""
    seconds = None if symmetry else TLC_SECONDS.get(name)
    return f"{seconds:>6.1f}" if seconds is not None else f"{'':>6}"


def run_ours(model: Path, symmetry: bool) -> tuple[dict, float]:
    flag = "--symmetry" if symmetry else "--no-symmetry"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "raftspec", "check", str(model), flag, "--workers", "1", "--json",
         "--quiet"],
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


def run_ours_cpu(model: Path, symmetry: bool, python: str = sys.executable) -> float:
    """raftspec's exploration CPU seconds (every property of the model checked), with the
    checkout that ``python`` imports."""
    proc = subprocess.run([python, "-c", OURS_CPU, str(model), "on" if symmetry else "off"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    return float(proc.stdout.split()[2])


def run_tuple_bfs(model: Path) -> tuple[int, int, float]:
    """(distinct, generated, exploration CPU seconds) of the independent tuple BFS."""
    proc = subprocess.run([sys.executable, "-c", TUPLE_BFS, str(ROOT / "benchmarks"),
                           str(model)], capture_output=True, text=True, cwd=ROOT, check=True)
    distinct, generated, _, cpu = proc.stdout.split()
    return int(distinct), int(generated), float(cpu)


def peak_bytes(model: Path, symmetry: bool) -> int:
    """Peak bytes allocated by raftspec's exploration (tracemalloc), in its own process."""
    proc = subprocess.run([sys.executable, "-c", MEMORY, str(model), "on" if symmetry else "off"],
                          capture_output=True, text=True, cwd=ROOT, check=True)
    return int(proc.stdout.split()[1])


FLOOR = """
import gc, sys, time
sys.path.insert(0, sys.argv[1])
import tuple_bfs
from raftspec.checker.explore import explore
from raftspec.checker.system import ProtocolSystem
from raftspec.protocol import MESSAGE
from raftspec.spec.model import load_model
model = load_model(sys.argv[2])
system = ProtocolSystem(model, symmetry=False)
c, repeat = model.config, int(sys.argv[3])
states, seen = [], set()   # the distinct states, through the generated expand (not timed)
level = [s for s in system.init_states() if system.constraint(s)]
while level:
    nxt = []
    for s in level:
        if s not in seen:
            seen.add(s)
            states.append(s)
            nxt += [t for _, t in system.expand(s)[1]]
    level = nxt
rows = [(row.arguments, tuple(p.kind for p in row.params) == (MESSAGE,), row.apply,
         system.protocol.beyond(row, c)) for row in system.protocol.rows]
calls_made = []   # every action call expand makes: (action, state, arguments)
for s in states:
    for arguments, _, apply, beyond in rows:
        for args in arguments(s, c):
            if beyond is None or not beyond(s, *args):
                calls_made.append((apply, s, args))
del seen, level
gc.collect()
gc.freeze()   # the states kept here are not the searches' garbage: no collection scans them
def enumerators():
    for s in states:
        for arguments, needs_message, _, _ in rows:
            if needs_message and not s[1]:
                continue
            for _ in arguments(s, c):
                pass
def calls():
    for s in states:
        for arguments, needs_message, _, _ in rows:
            if needs_message and not s[1]:
                continue
            len((s, c))
def actions():
    for apply, s, args in calls_made:
        apply(s, *args)
def expand():
    e = system.expand
    for s in states:
        e(s)
def whole():
    explore(system)
def baseline():
    tuple_bfs.explore(c.servers, c.values, c.max_term, c.max_log_length, c.max_messages,
                      c.restart, c.duplicate, c.drop)
figures = {}
for _ in range(repeat):   # rotated, the fastest of each kept
    for name, run in (("tuple", baseline), ("explore", whole), ("expand", expand),
                      ("enumerators", enumerators), ("actions", actions), ("calls", calls)):
        started = time.process_time()
        run()
        took = time.process_time() - started
        figures[name] = min(took, figures.get(name, took))
print(len(states), *(figures[k] for k in ("tuple", "explore", "expand", "enumerators", "actions",
                                          "calls")))
"""


def floor(models: list[Path], repeat: int) -> None:
    """Where one state's time goes against the tuple BFS's whole search: the same distinct
    states (found once, not timed) passed to the generated ``expand`` alone, to every row's
    enumerator alone (its arguments listed, no action applied), to every action call expand
    makes alone, and to an empty call per row (a C builtin: the loop and call overhead
    without any enumerator's body)."""
    print(f"{'model':<7} {'distinct':>9} {'tuple s':>8} {'explore s':>9} {'expand s':>8} "
          f"{'enum s':>7} {'actions s':>9} {'calls s':>7} {'expand/tuple':>12} "
          f"{'enum/tuple':>10} {'actions/tuple':>13}")
    for model in models:
        proc = subprocess.run([sys.executable, "-c", FLOOR, str(ROOT / "benchmarks"),
                               str(model), str(repeat)],
                              capture_output=True, text=True, cwd=ROOT, check=True)
        n, *figures = proc.stdout.split()
        tup, whole, expand, enum, act, calls = map(float, figures)
        print(f"{model.stem:<7} {int(n):>9,} {tup:>8.2f} {whole:>9.2f} {expand:>8.2f} "
              f"{enum:>7.2f} {act:>9.2f} {calls:>7.2f} {expand / tup:>12.2f} "
              f"{enum / tup:>10.2f} {act / tup:>13.2f}")
    print("\nCPU seconds, fastest of --repeat rotated runs in one process: tuple: the tuple "
          "BFS's whole search (every property); explore: raftspec's whole search; expand: the "
          "generated expand on every distinct state once; enum: every row's enumerator on "
          "every distinct state, its arguments listed (what expand does before any action); "
          "actions: every action call expand makes (the instances its enumerators list and "
          "its bound checks do not count unbuilt), their arguments listed beforehand; calls: "
          "the enumerators' loop calling a C builtin instead (loop overhead only)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny2,msgs2,mid2,tiny3")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per measurement; the fastest is reported (default 3)")
    parser.add_argument("--big", action="store_true",
                        help="also mid3 (1.48M states; minutes), without symmetry, one run")
    parser.add_argument("--baseline-python", metavar="PYTHON",
                        help="an interpreter importing another checkout of raftspec: its "
                             "exploration CPU seconds, alternated with ours, as 'vs base'")
    parser.add_argument("--floor", action="store_true",
                        help="instead of the table: the generated expand, the rows' "
                             "enumerators and the action calls, each alone on every distinct "
                             "state, against the tuple BFS's whole search (where a state's time "
                             "goes; no symmetry)")
    args = parser.parse_args()
    if args.floor:
        floor([MODELS / f"{name}.yaml" for name in args.models.split(",")], args.repeat)
        return
    if args.baseline_python and not Path(args.baseline_python).exists():
        parser.error(f"--baseline-python {args.baseline_python}: no such file")

    header = (f"{'model':<7} {'sym':<4} {'distinct':>9} {'generated':>10} {'seconds':>8} "
              f"{'explore s':>9} {'generated/s':>12} {'B/distinct':>11} {'tuple s':>8} "
              f"{'vs tuple':>8} {'vs base':>7} {'base s':>7} {'time ratio':>10} "
              f"{'mem ratio':>9} {'TLC s':>6}")
    print(header)
    print("-" * len(header))
    plain_cost: dict[str, float] = {}
    models = [MODELS / f"{name}.yaml" for name in args.models.split(",")]
    for model in models + ([BIG] if args.big else []):
        name = model.stem
        big = model == BIG
        repeat = 1 if big else args.repeat
        tuple_d, tuple_g, tuple_cpu = min((run_tuple_bfs(model) for _ in range(repeat)),
                                          key=lambda r: r[2])
        base_seconds = min(run_baseline(model, "time")[2] for _ in range(repeat))
        base_peak = run_baseline(model, "trace")[1]
        for symmetry in (False,) if big else (False, True):
            report, wall = min((run_ours(model, symmetry) for _ in range(repeat)),
                               key=lambda r: r[1])
            ours, theirs = [], []
            for _ in range(repeat):  # alternated, so that load on a shared machine hits both
                ours.append(run_ours_cpu(model, symmetry))
                if args.baseline_python:
                    theirs.append(run_ours_cpu(model, symmetry, args.baseline_python))
            explore_s = min(ours)
            vs_base = f"{explore_s / min(theirs):>7.2f}" if theirs else f"{'':>7}"
            distinct, generated = report["distinct_states"], report["states_generated"]
            if not symmetry and (distinct, generated) != (tuple_d, tuple_g):
                raise SystemExit(f"{name}: raftspec counts {distinct}/{generated}, the tuple "
                                 f"BFS {tuple_d}/{tuple_g}")
            peak = peak_bytes(model, symmetry)
            per_state = peak / distinct
            if not symmetry:
                plain_cost[name] = wall / distinct
            cost_note = f"  (cost/distinct = {wall / distinct / plain_cost[name]:.2f}x plain)" \
                if symmetry else ""
            vs_tuple = f"{explore_s / tuple_cpu:>8.2f}" if not symmetry else f"{'':>8}"
            print(
                f"{name:<7} {'on' if symmetry else 'off':<4} {distinct:>9,} {generated:>10,} "
                f"{wall:>8.2f} {explore_s:>9.2f} {generated / explore_s:>12,.0f} "
                f"{per_state:>11.0f} {tuple_cpu:>8.2f} {vs_tuple} {vs_base} "
                f"{base_seconds:>7.2f} {wall / base_seconds:>10.2f} "
                f"{peak / base_peak:>9.2f} "
                f"{tlc_column(name, symmetry)}"
                f"{cost_note}"
            )
    print("\nseconds: whole process (wall, --workers 1); explore s: exploration CPU seconds; "
          "fastest of --repeat runs; tuple s: the independent tuple BFS's exploration CPU "
          "seconds, every property checked; vs tuple = explore s / tuple s; vs base = "
          "explore s / the --baseline-python checkout's explore s (fastest of as many "
          "alternated runs); base: naive BFS over a set of reference States (same run), "
          "time ratio = seconds / base s, mem ratio = peak / base peak; TLC s: published, "
          "not measured here")


if __name__ == "__main__":
    main()
