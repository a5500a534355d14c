"""The servers of a cluster trace are its nodes: messages travel only between them, from the
node that logs the send to the node that logs the receive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raftspec.traces.validate import ClusterAdapter, validate_paths

FAULTS = Path(__file__).parent / "data" / "faults"

Files = dict[int, list[dict]]


def load() -> Files:
    """The faults trace (nodes 1, 2, 3) as decoded events, by node."""
    return {int(p.stem.split("-")[1]): [json.loads(line) for line in p.read_text().splitlines()]
            for p in sorted(FAULTS.glob("node-*.ndjson"))}


def first_unexplained(tmp_path: Path, files: Files) -> tuple[int, int] | None:
    """Validate ``files`` written to tmp_path: (node, line) of the first unexplained event, or
    None when the trace is valid."""
    paths = []
    for node, objs in files.items():
        path = tmp_path / f"node-{node}.ndjson"
        path.write_text("".join(json.dumps(obj) + "\n" for obj in objs))
        paths.append(str(path))
    verdict = validate_paths(paths, ClusterAdapter())
    if verdict.valid:
        return None
    assert verdict.event is not None
    return verdict.event.node, verdict.event.line


def readdress(files: Files, msg_id: str, to: int) -> Files:
    """A copy of ``files`` in which the message ``msg_id`` (its send and every receive of it)
    is addressed to ``to``."""
    out = json.loads(json.dumps(files))
    for objs in out.values():
        for obj in objs:
            if "msg" in obj and obj["msg"]["id"] == msg_id:
                obj["msg"]["to"] = to
    return {int(node): objs for node, objs in out.items()}


def where(files: Files, event: str, msg_id: str) -> list[tuple[int, int]]:
    """(node, line) of each ``event`` (send or recv) of the message ``msg_id``."""
    return [(node, n) for node, objs in files.items() for n, obj in enumerate(objs, 1)
            if obj["event"] == event and obj["msg"]["id"] == msg_id]


@pytest.mark.parametrize("to", [4, 7])
def test_a_send_to_a_node_outside_the_trace_is_invalid_at_that_send(tmp_path, to: int) -> None:
    """Every send of the trace, addressed instead to a node that is neither a member nor has a
    file, is the first unexplained event (it used to add phantom servers 4..to, which changed
    the quorum and blamed the first election)."""
    files = load()
    wrong = []
    for objs in files.values():
        for obj in objs:
            if obj["event"] == "send":
                mid = obj["msg"]["id"]
                got = first_unexplained(tmp_path, readdress(files, mid, to))
                if got not in where(files, "send", mid):
                    wrong.append((mid, got))
    assert not wrong


def test_a_receive_of_a_message_addressed_to_another_node_is_invalid_there(tmp_path) -> None:
    """Every message received in the trace, addressed instead to the third node (send and
    receives alike, so the receiver logs a message that is not for it): the verdict blames its
    send (a reply the reference would not send) or its receive, never a later event. It used
    to run the handler at the addressee and blame the receiver's next event, or crash."""
    files = load()
    wrong = []
    for node, objs in files.items():
        for obj in objs:
            if obj["event"] == "recv":
                msg = obj["msg"]
                third = ({1, 2, 3} - {node, msg["from"]}).pop()
                got = first_unexplained(tmp_path, readdress(files, msg["id"], third))
                if got not in where(files, "send", msg["id"]) + where(files, "recv", msg["id"]):
                    wrong.append((msg["id"], got))
    assert not wrong
