"""Symbolic checking benchmark: BMC depth reached in a time budget, and induction proof times.

    python benchmarks/bench_symbolic.py [--budget SECONDS] [--only SUBSTRING] [--engines E,..]

BMC runs on 3 servers with all interleavings: two models with every action of raft.tla's Next
(message duplication, loss and restarts included) and the two deep mutant models. Each model
runs in the same process as plain BMC on Z3 (the baseline) and as reduced BMC (path reduction,
inferred invariants, checked depths' properties: checker.symbolic) on each engine of
--engines (default: cadical and z3). A run stops at the first violation or when the budget
runs out (the depth under way does not count). Induction times are for the shipped lemma sets.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from raftspec.checker.symbolic import ENGINES, BmcResult, bmc, induct
from raftspec.reference import Config
from raftspec.spec import smt
from raftspec.spec.model import load_model

PROPS = ["election_safety", "log_matching", "leader_completeness", "state_machine_safety"]
MODELS = Path(__file__).resolve().parents[1] / "spec" / "models"

BMC_MODELS = {
    "T2 L1 M1, all actions": Config(3, 1, 2, 1, 1),
    "T3 L2 M2, all actions": Config(3, 1, 3, 2, 2),
    "mutant_vote_without_log_check (BFS: 26)":
        load_model(MODELS / "mutant_vote_without_log_check.yaml").config,
    "mutant_no_term_check_on_append (BFS: 32)":
        load_model(MODELS / "mutant_no_term_check_on_append.yaml").config,
}
"""All four are symmetric in their servers, so the reduced runs break server symmetry."""
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
    parser.add_argument("--only", default="", help="run only BMC models whose name has this")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"engines for reduced BMC (default {','.join(ENGINES)})")
    parser.add_argument("--no-induction", action="store_true", help="skip the proofs")
    args = parser.parse_args()
    engines = [e for e in args.engines.split(",") if e]
    b = f"{args.budget:.0f} s"
    print(f"| BMC model (3 servers) | plain, z3: depth in {b} | "
          + " | ".join(f"reduced, {e}: depth in {b} | last depth took" for e in engines) + " |")
    print("|---|---:|" + "---:|---:|" * len(engines))
    for name, config in BMC_MODELS.items():
        if args.only not in name:
            continue
        plain = bmc(smt.Encoding(config), PROPS, ["leader_append_only"], max_depth=1000,
                    reduce=False, engine="z3", time_budget=args.budget)
        cells = [_reached(plain, args.budget)]
        for engine in engines:
            reduced = bmc(smt.Encoding(config), PROPS, ["leader_append_only"], max_depth=1000,
                          symmetry=True, engine=engine, time_budget=args.budget)
            cells += [_reached(reduced, args.budget), _last(reduced, args.budget)]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    if args.no_induction:
        return
    print()
    print("| induction (shipped lemmas) | bounds (N, V, T, L, M) | proved | seconds |")
    print("|---|---|---|---:|")
    for invariant, c in PROOFS:
        t0 = time.perf_counter()
        r = induct(smt.Encoding(c), invariant, ["shipped"])
        bounds = (c.servers, c.values, c.max_term, c.max_log_length, c.max_messages)
        print(f"| {invariant} | {bounds} | {r.proved} | {time.perf_counter() - t0:.1f} |",
              flush=True)


def _reached(r: BmcResult, budget: float) -> str:
    """The deepest depth completed within the budget, or the violation found within it."""
    if r.violated is not None and r.seconds <= budget:
        return f"violation at {r.depth} ({r.seconds:.0f} s)"
    done = [d for d in r.per_depth if d.total_seconds <= budget]
    return str(done[-1].depth if done else 0)


def _last(r: BmcResult, budget: float) -> str:
    done = [d for d in r.per_depth if d.total_seconds <= budget]
    return f"{done[-1].seconds:.1f} s" if done else "-"


if __name__ == "__main__":
    main()
