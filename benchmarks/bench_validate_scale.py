"""Does ``raftspec validate`` grow linearly with trace length? Records our cluster's traces
(3 nodes, loss/duplication/delay/reordering) of about 5k, 20k and 100k events and times one
validation of each; prints events, seconds and microseconds per event (flat = linear).

    python benchmarks/bench_validate_scale.py                 # records, then times
    python benchmarks/bench_validate_scale.py --keep DIR      # keep (or reuse) the recordings
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench_validate import record

from raftspec.traces.validate import ClusterAdapter, validate_paths

WRITES = (340, 1360, 6800)    # about 14.7 events per write under these faults


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keep", type=Path, default=None)
    parser.add_argument("writes", nargs="*", type=int, default=list(WRITES))
    args = parser.parse_args()
    base = args.keep or Path(tempfile.mkdtemp())
    print(f"{'writes':>7} {'events':>8} {'seconds':>8} {'µs/event':>9}  verdict")
    for writes in args.writes:
        out = base / f"w{writes}"
        paths = sorted(str(p) for p in out.glob("node-*.ndjson"))
        if not paths:
            out.mkdir(parents=True, exist_ok=True)
            paths = record(out, writes)
        started = time.perf_counter()
        verdict = validate_paths(paths, ClusterAdapter())
        elapsed = time.perf_counter() - started
        print(f"{writes:>7} {verdict.events:>8} {elapsed:>8.2f} "
              f"{1e6 * elapsed / verdict.events:>9.1f}  {'valid' if verdict.valid else 'INVALID'}",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
