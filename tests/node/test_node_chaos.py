"""Issue 11's done-when: a randomized fault run through real processes (node/chaos.py) ends
with no acknowledged write lost and a linearizable client history. ~1 minute; a longer run of
the same schedule: ``python benchmarks/fault_run.py --seconds 600``."""

from __future__ import annotations

import asyncio
import json

import pytest
from test_node_cluster import lincheck

from raftspec.node.chaos import FAULT_KINDS, append_history_violations, run_faults


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


def _history(tmp_path, rows) -> str:
    """rows: (process, type, f, key, value, time)."""
    path = tmp_path / "h.ndjson"
    path.write_text("".join(json.dumps({"process": p, "type": t, "f": f, "key": k, "value": v,
                                        "time": tm}) + "\n" for p, t, f, k, v, tm in rows))
    return str(path)


def test_the_append_order_check_accepts_a_linearizable_history(tmp_path) -> None:
    h = _history(tmp_path, [
        (1, "invoke", "append", "k", "<1.1>", 1), (2, "invoke", "append", "k", "<2.1>", 2),
        (2, "ok", "append", "k", "<2.1>", 3), (1, "ok", "append", "k", "<1.1>", 4),
        (3, "invoke", "get", "k", None, 5), (3, "ok", "get", "k", "<2.1><1.1>", 6),
        (4, "invoke", "append", "k", "<4.1>", 7), (4, "info", "append", "k", "<4.1>", 8),
        (5, "invoke", "get", "k", None, 9), (5, "fail", "get", "k", None, 10)])
    assert append_history_violations(h, {"k": "<2.1><1.1>"}) == []
    assert append_history_violations(h, {"k": "<2.1><1.1><4.1>"}) == []


@pytest.mark.parametrize("rows, final, needle", [
    ([(1, "invoke", "append", "k", "<1.1>", 1), (1, "ok", "append", "k", "<1.1>", 2),
      (2, "invoke", "get", "k", None, 3), (2, "ok", "get", "k", "", 4)],
     "<1.1>", "ordered after"),                                  # stale read
    ([(1, "invoke", "append", "k", "<1.1>", 1), (1, "ok", "append", "k", "<1.1>", 2),
      (2, "invoke", "append", "k", "<2.1>", 3), (2, "ok", "append", "k", "<2.1>", 4)],
     "<2.1><1.1>", "ordered after"),                             # appends reordered
    ([(1, "invoke", "append", "k", "<1.1>", 1), (1, "ok", "append", "k", "<1.1>", 2)],
     "", "not in the final value"),                              # lost
    ([(2, "invoke", "get", "k", None, 3), (2, "ok", "get", "k", "<9.9>", 4)],
     "<1.1>", "not a prefix"),
    ([], "<7.7>", "never appended"),
])
def test_the_append_order_check_finds_each_kind_of_violation(tmp_path, rows, final,
                                                              needle) -> None:
    rows = rows or [(1, "invoke", "get", "k", None, 1), (1, "ok", "get", "k", "", 2)]
    problems = append_history_violations(_history(tmp_path, rows), {"k": final})
    assert any(needle in p for p in problems), problems
