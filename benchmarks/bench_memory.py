"""Resident memory per distinct state as a search grows: the slope that decides whether a
100M-state model fits in memory, measured on a synthetic system of that shape.

    python benchmarks/bench_memory.py [--sizes 1000000,4000000,16000000] [--spill 2000]

Each size runs in its own process: ``explore`` (one worker, the frontier spilled in chunks of
``--spill`` states) on a synthetic system whose N states are the integers 0..N-1, each with
three steps (to 2s+1 and 2s+2, a binary tree, and back to s // 2, a state already seen: a hit
in the seen set). Its levels double, so the widest one holds half of all states, as the widest
levels of Raft models hold a large share of theirs; its states are small ints, so what is
measured is the search's own memory (seen set, parent indexes, spilled frontier), not the
states'. Printed per size: peak resident growth of the process during the search (ru_maxrss
minus the resident size before it), per distinct state; and the slope between consecutive
sizes (extra bytes per extra state), which is what a larger model pays per state. The
projection to 100M states is that slope times 100M plus the largest run's growth: a
projection, not a measurement, unless the largest size is 100M (``--sizes
16000000,100000000``: about 12 minutes and 2 GiB here).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECTED = 100_000_000

RUN = """
import json, resource, sys, time
from raftspec.checker.explore import explore
from raftspec.commands._contract import rss_bytes

MIX = 0x9E3779B97F4A7C15

class Tree:
    invariants = {}
    step_properties = {}
    def __init__(self, n):
        self.n = n
    def init_states(self):
        return (0,)
    def steps(self, s):
        return (("left", 2 * s + 1), ("right", 2 * s + 2), ("up", s // 2))
    def constraint(self, s):
        return s < self.n
    def fingerprint(self, s):
        return ((s + 1) * MIX & 0xFFFFFFFFFFFFFFFF) - (1 << 63)

n, spill = int(sys.argv[1]), int(sys.argv[2])
before = rss_bytes()
t = time.perf_counter()
r = explore(Tree(n), spill_from=spill)
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
assert r.distinct_states == n, r
print(json.dumps({"distinct": r.distinct_states, "generated": r.states_generated,
                  "growth": peak - before, "seconds": seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,4000000,16000000",
                        help="distinct states of each run (comma-separated, increasing)")
    parser.add_argument("--spill", type=int, default=2000,
                        help="states per spilled chunk of the frontier (default 2000)")
    args = parser.parse_args()
    try:
        sizes = sorted(int(x) for x in args.sizes.split(","))
    except ValueError:
        parser.error(f"--sizes: not a list of integers: {args.sizes!r}")
    print(f"{'distinct':>12} {'generated':>12} {'peak MiB':>9} {'B/state':>8} "
          f"{'slope B/state':>13} {'explore s':>9} {'load':>5}")
    previous = second = None
    for n in sizes:
        load = os.getloadavg()[0]
        proc = subprocess.run([sys.executable, "-c", RUN, str(n), str(args.spill)],
                              capture_output=True, text=True, cwd=ROOT)
        if proc.returncode != 0:
            raise SystemExit(f"the run of {n:,} states failed:\n{proc.stderr[-2000:]}")
        out = json.loads(proc.stdout)
        slope = ""
        if previous is not None:
            slope = f"{(out['growth'] - previous['growth']) / (n - previous['distinct']):.1f}"
        print(f"{n:>12,} {out['generated']:>12,} {out['growth'] / 2**20:>9.1f} "
              f"{out['growth'] / n:>8.1f} {slope:>13} {out['seconds']:>9.1f} {load:>5.2f}")
        second, previous = previous, out
    if len(sizes) > 1:
        last_two = (sizes[-2], sizes[-1])
        slope = (previous["growth"] - second["growth"]) / (last_two[1] - last_two[0])
        projected = previous["growth"] + slope * (PROJECTED - previous["distinct"])
        print(f"\nprojected for {PROJECTED:,} states (the last slope, {slope:.1f} B/state, "
              f"from the {previous['distinct']:,}-state run): {projected / 2**30:.2f} GiB")

if __name__ == "__main__":
    main()
