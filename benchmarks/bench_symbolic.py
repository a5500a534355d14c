"""Symbolic checking benchmark: BMC depth reached in a time budget, and induction proof times.

    python benchmarks/bench_symbolic.py [--budget SECONDS]

BMC runs on 3 servers with all interleavings (every action of raft.tla's Next, message
duplication, loss and restarts included) and stops after the depth during which the budget ran
out; induction times are for the shipped lemma sets.
"""

from __future__ import annotations

import argparse
import time

from checker.symbolic import bmc, induct
from reference import Config

PROPS = ["election_safety", "log_matching", "leader_completeness", "state_machine_safety"]

BMC_MODELS = {
    "3 servers, T2 L1 M1, all actions": Config(3, 1, 2, 1, 1),
    "3 servers, T3 L2 M2, all actions": Config(3, 1, 3, 2, 2),
}
PROOFS = [
    ("election_safety", Config(3, 1, 3, 1, 2)),
    ("election_safety", Config(3, 2, 4, 2, 2)),
    ("log_matching", Config(3, 2, 3, 2, 2)),
    ("log_matching", Config(3, 2, 4, 3, 2)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=60.0,
                        help="seconds of BMC per model (default 60)")
    args = parser.parse_args()
    print(f"| BMC model | depth reached in {args.budget:.0f} s | last depth took |")
    print("|---|---:|---:|")
    for name, config in BMC_MODELS.items():
        r = bmc(config, PROPS, ["leader_append_only"], max_depth=1000, time_budget=args.budget)
        done = [d for d in r.per_depth if d.total_seconds <= args.budget]
        depth = done[-1].depth if done else 0
        last = done[-1].seconds if done else 0.0
        print(f"| {name} | {depth} | {last:.1f} s |", flush=True)
    print()
    print("| induction (shipped lemmas) | bounds (N, V, T, L, M) | proved | seconds |")
    print("|---|---|---|---:|")
    for invariant, c in PROOFS:
        t0 = time.perf_counter()
        r = induct(c, invariant, ["shipped"])
        bounds = (c.servers, c.values, c.max_term, c.max_log_length, c.max_messages)
        print(f"| {invariant} | {bounds} | {r.proved} | {time.perf_counter() - t0:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
