"""The etcd-raft variant explored by the checker (reference/variants/etcd_model.py), with and
without ``raft.hup``'s campaign guard (etcd-io/raft #456), every safety property:

1. from the state after ISSUE_456_PREFIX (node 2 has committed a configuration change it has
   not applied), exhaustively;
2. from the state where node 1 has won term 1, within a time budget (``--seconds``).

    python benchmarks/bench_etcd_model.py [--seconds 300]
"""

from __future__ import annotations

import argparse
import time

from raftspec.reference.variants.etcd_model import ISSUE_456_PREFIX, EtcdBounds, check, replay


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=300)
    args = parser.parse_args()
    print(f"{'start':>16} {'guard':>6} {'verdict':>26} {'states':>9} {'depth':>6} "
          f"{'complete':>9} {'seconds':>8}")
    for start in ("#456 prefix", "leader elected"):
        for guard in (False, True):
            bounds = EtcdBounds(guard=guard)
            first = replay(bounds, ISSUE_456_PREFIX) if start == "#456 prefix" else None
            started = time.perf_counter()
            r = check(bounds, first, deadline=started + args.seconds)
            verdict = f"violated {r.violated}" if r.violated else "no violation"
            print(f"{start:>16} {str(guard):>6} {verdict:>26} {r.distinct_states:>9,} "
                  f"{r.depth:>6} {str(r.complete):>9} {time.perf_counter() - started:>8.1f}",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
