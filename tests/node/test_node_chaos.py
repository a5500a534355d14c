"""Issue 11's done-when: a randomized fault run through real processes (node/chaos.py) ends
with no acknowledged write lost and a linearizable client history. ~1 minute; a longer run of
the same schedule: ``python benchmarks/fault_run.py --seconds 600``."""

from __future__ import annotations

import asyncio

from test_node_cluster import lincheck

from raftspec.node.chaos import FAULT_KINDS, run_faults


def test_random_faults_lose_no_acknowledged_write_and_stay_linearizable(make_cluster,
                                                                         tmp_path) -> None:
    c = make_cluster(5, node_args=["--snapshot-threshold", "300", "--seed", "21"])
    c.wait_leader()
    history = str(tmp_path / "history.ndjson")
    report = asyncio.run(run_faults(c, seconds=30, seed=21, history_path=history))
    assert report.problems() == []
    assert all(report.faults[k] >= 1 for k in FAULT_KINDS), report.faults
    assert report.disk_exits >= 1                 # a disk fault really stopped a node
    assert report.acknowledged_writes > 200, report.ops
    lincheck(history)
