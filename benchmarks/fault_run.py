"""A long randomized fault run against a real 5-node cluster (node/chaos.py), with its verdict.

    python benchmarks/fault_run.py [--seconds 600] [--seed 1] [--nodes 5] [--writers 4]
                                   [--keys 8] [--network loss=0.2,dup=0.1,delay=0-5ms,reorder=0.1]

Clients append unique tokens and read keys while the schedule kills a minority of nodes or all
of them, partitions the leader into a minority, fails a node's disk (every write and fsync
returns EIO until the node stops itself; it is restarted after the outage), and the network
drops, duplicates, delays and reorders node-to-node datagrams throughout. Prints the operations,
the faults injected, and what the end check found: writes lost, duplicated or out of order
(each must be 0), committed WAL prefixes that differ, and lincheck's verdict on the history.
Exit status 0 only if all of that is clean. The short version runs in CI
(tests/node/test_node_chaos.py).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from raftspec.node.chaos import run_faults  # noqa: E402
from raftspec.node.supervisor import LocalCluster  # noqa: E402
from raftspec.traces.lincheck import check_file  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--nodes", type=int, default=5)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--keys", type=int, default=8)
    ap.add_argument("--snapshot-threshold", type=int, default=1000)
    ap.add_argument("--network", default="loss=0.2,dup=0.1,delay=0-5ms,reorder=0.1")
    ap.add_argument("--dir", default=None, help="keep data and history here")
    args = ap.parse_args()
    work = args.dir or tempfile.mkdtemp(prefix="fault_run-")
    history = os.path.join(work, "history.ndjson")
    with LocalCluster(args.nodes, os.path.join(work, "cluster"),
                      node_args=["--snapshot-threshold", str(args.snapshot_threshold),
                                 "--seed", str(args.seed)]) as c:
        c.start()
        c.wait_leader()
        report = asyncio.run(run_faults(c, args.seconds, args.seed, history, args.writers,
                                        args.keys, args.network))
    t0 = time.monotonic()
    verdict = check_file(history, fmt="ndjson", model="kv")
    lin_s = time.monotonic() - t0
    ops = report.ops
    print(f"fault run: {args.nodes} nodes, seed {args.seed}, {report.seconds:.0f} s, "
          f"network {args.network}, data in {work}")
    print("| operations | count |\n|---|---|")
    for k in sorted(ops):
        print(f"| {k} | {ops[k]:,} |")
    print("\n| faults injected | count |\n|---|---|")
    for k in sorted(report.faults):
        print(f"| {k} | {report.faults[k]} |")
    print(f"| nodes that stopped on a disk failure (exit 3) | {report.disk_exits} |")
    print("\n| end check | result |\n|---|---|")
    print(f"| acknowledged appends | {report.acknowledged_writes:,} |")
    print(f"| lost | {len(report.lost)} |")
    print(f"| duplicated | {len(report.duplicated)} |")
    print(f"| out of order | {len(report.out_of_order)} |")
    print(f"| committed WAL entries that differ | {len(report.diverged)} |")
    print(f"| lincheck | {'linearizable' if verdict.linearizable else 'NOT linearizable'} "
          f"({lin_s:.1f} s) |")
    for p in report.problems()[:20]:
        print("problem:", p)
    return 0 if verdict.linearizable and not report.problems() else 1


if __name__ == "__main__":
    sys.exit(main())
