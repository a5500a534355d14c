"""merge_by_causality: per-node order and send-before-receive, whatever the clocks say."""

from __future__ import annotations

import pytest

from raftspec.traces.schema import TraceSchemaError, merge_by_causality


def ev(node: int, seq: int, kind: str, msg_id: str, time_ns: int) -> dict:
    return {"node": node, "seq": seq, "event": kind, "msg": {"id": msg_id}, "time_ns": time_ns}


def test_a_receive_follows_its_send_even_when_its_clock_is_earlier() -> None:
    a = [ev(1, 1, "send", "1:1", 500), ev(1, 2, "recv", "2:1", 900)]
    b = [ev(2, 1, "recv", "1:1", 10), ev(2, 2, "send", "2:1", 20)]
    order = [(e["node"], e["seq"]) for e in merge_by_causality([a, b])]
    assert order == [(1, 1), (2, 1), (2, 2), (1, 2)]


def test_a_receive_whose_send_is_missing_is_ready() -> None:
    b = [ev(2, 1, "recv", "9:9", 10), ev(2, 2, "send", "2:1", 20)]
    assert [e["seq"] for e in merge_by_causality([b])] == [1, 2]


def test_receives_waiting_on_each_other_are_an_error() -> None:
    a = [ev(1, 1, "recv", "2:1", 1), ev(1, 2, "send", "1:1", 2)]
    b = [ev(2, 1, "recv", "1:1", 1), ev(2, 2, "send", "2:1", 2)]
    with pytest.raises(TraceSchemaError, match="cycle: node 1 seq 1, node 2 seq 1"):
        merge_by_causality([a, b])
