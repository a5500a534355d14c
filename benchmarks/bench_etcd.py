"""Each of etcd-raft's shared traces (../shared/traces/etcd-raft): verdict and time, as the
README table. Best of 3 runs per trace (``--runs``).

    python benchmarks/bench_etcd.py [--runs 3] [--markdown]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from raftspec.protocol.errors import RaftspecError
from raftspec.traces.etcd import EtcdAdapter
from raftspec.traces.validate import validate_paths

ETCD = Path(__file__).resolve().parents[1].parent / "shared" / "traces" / "etcd-raft"


def judge(path: Path) -> tuple[str, int]:
    try:
        v = validate_paths([str(path)], EtcdAdapter())
    except RaftspecError as err:
        return f"exit 2: {err.message}", 0
    return ("valid" if v.valid else f"INVALID at line {v.event.line}"), v.events


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    if not ETCD.is_dir():
        print(f"{ETCD} not present")
        return 1
    rows = []
    for path in sorted(ETCD.glob("*/*.ndjson*")):
        best = float("inf")
        for _ in range(args.runs):
            started = time.perf_counter()
            verdict, events = judge(path)
            best = min(best, time.perf_counter() - started)
        rows.append((f"{path.parent.name}/{path.name}", events, verdict, best))
    if args.markdown:
        print("| trace | events | verdict | seconds |\n|---|---:|---|---:|")
        for name, events, verdict, secs in rows:
            print(f"| `{name}` | {events:,} | {verdict} | {secs:.2f} |")
    else:
        for name, events, verdict, secs in rows:
            print(f"{name:60s} {events:>6} {secs:>7.2f} s  {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
