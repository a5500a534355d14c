"""The mutation suite on etcd-raft's shared traces, in full: for every trace the validator
accepts and every operator of traces/etcd/mutate.py, up to N mutants (``--per-operator``, 0 =
every site; fixed ``--seed``), each validated; prints how many were rejected and how many lines
after the mutated line the rejection came, per operator.

    python benchmarks/bench_etcd_mutants.py [--per-operator 20] [--seed 14] [--traces GLOB]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from pathlib import Path

from raftspec.protocol.errors import RaftspecError
from raftspec.traces.etcd import EtcdAdapter
from raftspec.traces.etcd.mutate import OPERATORS, read_raw, sample
from raftspec.traces.validate import validate_paths

ETCD = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "etcd-raft"
BUCKETS = ("0", "1", "2", "3-5", "6-10", "11-50", ">50")


def bucket(d: int) -> str:
    for name, hi in (("0", 0), ("1", 1), ("2", 2), ("3-5", 5), ("6-10", 10), ("11-50", 50)):
        if d <= hi:
            return name
    return ">50"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--per-operator", type=int, default=20)
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--traces", default="*/*.ndjson*")
    args = parser.parse_args()
    dist: dict[str, Counter] = {op: Counter() for op in OPERATORS}
    made: Counter = Counter()
    accepted, early = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "mutant.ndjson"
        for trace in sorted(ETCD.glob(args.traces)):
            try:
                if not validate_paths([str(trace)], EtcdAdapter()).valid:
                    print(f"skipped (not valid): {trace.name}")
                    continue
            except RaftspecError as err:
                print(f"skipped ({err.message}): {trace.name}")
                continue
            for m in sample(read_raw(str(trace)), args.per_operator, args.seed):
                made[m.operator] += 1
                target.write_text(m.text())
                v = validate_paths([str(target)], EtcdAdapter())
                if v.valid:
                    accepted.append(f"{trace.name}: {m.description}")
                    continue
                d = v.event.line - m.line
                if d < 0:
                    early.append(f"{trace.name}: {m.description} (rejected at {v.event.line})")
                dist[m.operator][bucket(max(d, 0))] += 1
    total = sum(made.values())
    print(f"\n{total} mutants, {total - len(accepted)} rejected, {len(accepted)} accepted, "
          f"{len(early)} rejected before the mutated line ({time.perf_counter() - started:.0f} s)")
    print("lines after the mutated line at which the mutant was rejected:")
    print(f"{'operator':>15} {'mutants':>8} " + " ".join(f"{b:>6}" for b in BUCKETS))
    for op in OPERATORS:
        print(f"{op:>15} {made[op]:>8} " + " ".join(f"{dist[op][b]:>6}" for b in BUCKETS))
    for line in accepted + early:
        print("  " + line)
    return 0 if not accepted and not early else 1


if __name__ == "__main__":
    raise SystemExit(main())
