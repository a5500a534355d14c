"""The servers of a cluster trace are its nodes, whatever their ids: a quorum is a majority of
exactly those, and messages travel only between them, from the node that logs the send to the
node that logs the receive."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from raftspec.cli import main
from raftspec.traces.schema import MAX_ID
from raftspec.traces.validate import ClusterAdapter, Verdict, validate_paths

DATA = Path(__file__).parent / "data"
SCENARIOS = sorted(p.name for p in DATA.iterdir() if p.is_dir())

Files = dict[int, list[dict]]


def load(scenario: str = "faults") -> Files:
    """A recorded trace (nodes 1, 2, 3) as decoded events, by node."""
    return {int(p.stem.split("-")[1]): [json.loads(line) for line in p.read_text().splitlines()]
            for p in sorted((DATA / scenario).glob("node-*.ndjson"))}


def write(tmp_path: Path, files: Files) -> list[str]:
    """``files`` written to tmp_path, one file per node; their paths, in the order of files."""
    paths = []
    for node, objs in files.items():
        path = tmp_path / f"node-{node}.ndjson"
        path.write_text("".join(json.dumps(obj) + "\n" for obj in objs))
        paths.append(str(path))
    return paths


def validate_files(tmp_path: Path, files: Files) -> Verdict:
    return validate_paths(write(tmp_path, files), ClusterAdapter())


def first_unexplained(tmp_path: Path, files: Files) -> tuple[int, int] | None:
    """(node, line) of the first unexplained event of ``files``, or None when valid."""
    verdict = validate_files(tmp_path, files)
    if verdict.valid:
        return None
    assert verdict.event is not None
    return verdict.event.node, verdict.event.line


def rename(files: Files, new: dict[int, int]) -> Files:
    """A copy of ``files`` with every node id ``k`` replaced by ``new[k]``: event nodes, votes,
    message ends and ids, and members."""
    out: Files = {}
    for node, objs in files.items():
        out[new[node]] = renamed = []
        for obj in objs:
            obj = dict(obj, node=new[obj["node"]])
            if obj["voted_for"] is not None:
                obj["voted_for"] = new[obj["voted_for"]]
            if "members" in obj:
                obj["members"] = {str(new[int(k)]): v for k, v in obj["members"].items()}
            if "msg" in obj:
                sender, seq = obj["msg"]["id"].split(":")
                obj["msg"] = dict(obj["msg"], id=f"{new[int(sender)]}:{seq}",
                                  **{end: new[obj["msg"][end]] for end in ("from", "to")})
            renamed.append(obj)
    return out


def bump_first_commit(files: Files) -> tuple[int, int]:
    """Node 2's first advance_commit claims one more entry (invalid there); (node, line)."""
    for n, obj in enumerate(files[2], 1):
        if obj["event"] == "advance_commit":
            obj["commit_index"] += 1
            return 2, n
    raise AssertionError("no advance_commit")


ids = st.lists(st.integers(1, MAX_ID), min_size=3, max_size=3, unique=True)


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=ids, scenario=st.sampled_from(SCENARIOS))
@example(ids=[1, 2, 5], scenario="faults")
def test_node_ids_do_not_change_the_verdict_of_a_valid_trace(tmp_path, ids, scenario) -> None:
    """Any three distinct ids, in any order, for nodes 1, 2, 3: still valid. The servers used
    to be 1..the largest id (node 3 renamed 5: phantom servers 3 and 4 made the first election
    fail for want of a majority; renamed 100000: the validator hashed a state of 100000
    servers, for minutes, deaf to --time-limit)."""
    assert first_unexplained(tmp_path, rename(load(scenario), dict(zip((1, 2, 3), ids,
                                                                      strict=True)))) is None


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=ids)
@example(ids=[1, 2, 5])
def test_node_ids_do_not_change_where_a_trace_is_invalid(tmp_path, ids) -> None:
    files = load()
    node, line = bump_first_commit(files)
    new = dict(zip((1, 2, 3), ids, strict=True))
    assert first_unexplained(tmp_path, rename(files, new)) == (new[node], line)


def test_the_verdict_names_the_node_of_each_server_when_ids_are_not_1_to_n(tmp_path) -> None:
    files = load()
    bump_first_commit(files)
    verdict = validate_files(tmp_path, rename(files, {1: 1, 2: 2, 3: 5}))
    (cand,) = verdict.to_json()["first_unexplained"]["candidates"]
    assert cand["lines"][0] == "servers: s1 is node 1, s2 is node 2, s3 is node 5"
    assert cand["state"]["nodes"] == [1, 2, 5]
    assert [s["id"] for s in cand["state"]["servers"]] == [1, 2, 3]


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


@pytest.mark.parametrize("node", [MAX_ID + 1, 2**63])
def test_a_node_id_beyond_what_the_node_takes_is_bad_input_exit_2(tmp_path, capsys,
                                                                   node: int) -> None:
    """Node 3 renamed 2**63 used to end in OverflowError (exit 4); ids are 1..2**31-1."""
    paths = write(tmp_path, rename(load(), {1: 1, 2: 2, 3: node}))
    assert main(["validate", *paths]) == 2
    err = capsys.readouterr().err
    assert f"{paths[0]}:1: members: node id '{node}' is not in 1..{MAX_ID}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("to", [0, -1])
def test_a_send_to_a_node_id_out_of_range_is_bad_input_exit_2(tmp_path, capsys, to: int) -> None:
    """It used to be valid: server 0 and -1 were Python's last servers of the reference."""
    files = load()
    ((node, line),) = where(files, "send", "2:46")
    assert main(["validate", *write(tmp_path, readdress(files, "2:46", to))]) == 2
    err = capsys.readouterr().err
    assert f"node-{node}.ndjson:{line}: msg.to: node id {to} is not in 1..{MAX_ID}" in err
