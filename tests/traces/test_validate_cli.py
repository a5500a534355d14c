"""``raftspec validate``: verdicts, JSON, exit codes, and bad input named by file, line, field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raftspec.cli import main
from raftspec.protocol.errors import RaftspecError
from raftspec.spec.model import MODELS_DIR
from raftspec.traces.validate import ClusterAdapter, validate_paths

DATA = Path(__file__).parent / "data"
FAULTS = sorted(str(p) for p in (DATA / "faults").glob("node-*.ndjson"))


def _lines(path: str) -> list[str]:
    return Path(path).read_text().splitlines()


def _copy(tmp_path: Path, edit=None) -> list[str]:
    """The faults trace copied to tmp_path, with edit(file index, lines) applied."""
    out = []
    for k, path in enumerate(FAULTS):
        lines = _lines(path)
        if edit is not None:
            edit(k, lines)
        target = tmp_path / Path(path).name
        target.write_text("\n".join(lines) + "\n")
        out.append(str(target))
    return out


def test_valid_trace_prints_events_and_steps_and_exits_0(capsys) -> None:
    assert main(["validate", *FAULTS]) == 0
    out = capsys.readouterr().out
    n = sum(len(_lines(p)) for p in FAULTS)
    assert out.startswith(f"valid ({n} events, ")
    assert "reference steps" in out


def test_json_verdict_has_the_documented_keys(capsys) -> None:
    assert main(["validate", "--json", *FAULTS]) == 0
    verdict = json.loads(capsys.readouterr().out)
    assert set(verdict) == {"valid", "events", "steps", "seconds", "first_unexplained",
                            "complete", "stopped", "validated"}
    assert verdict["valid"] is True and verdict["first_unexplained"] is None
    assert (verdict["complete"], verdict["stopped"]) == (True, None)
    assert verdict["validated"] == verdict["events"]


def test_invalid_trace_names_file_line_candidates_and_failed_conditions(tmp_path, capsys) -> None:
    def bump_commit(k: int, lines: list[str]) -> None:
        if k == 1:
            for n, line in enumerate(lines):
                obj = json.loads(line)
                if obj["event"] == "advance_commit":
                    obj["commit_index"] += 1
                    lines[n] = json.dumps(obj)
                    bump_commit.line = n + 1
                    return

    paths = _copy(tmp_path, bump_commit)
    assert main(["validate", "--json", *paths]) == 1
    first = json.loads(capsys.readouterr().out)["first_unexplained"]
    assert first["file"] == paths[1] and first["line"] == bump_commit.line
    assert first["event"]["event"] == "advance_commit"
    (cand,) = first["candidates"]
    assert cand["closest_action"].startswith("AdvanceCommitIndex")
    assert any("majority" in why or "log length" in why for why in cand["failed"])
    assert main(["validate", *paths]) == 1
    text = capsys.readouterr().out
    assert text.startswith(f"invalid: {paths[1]}:{bump_commit.line}:")
    assert "closest action: AdvanceCommitIndex" in text and "failed:" in text


def test_merge_follows_causality_not_clocks(tmp_path) -> None:
    """Node 1's clock an hour fast, node 3's an hour slow: still valid."""
    def skew(k: int, lines: list[str]) -> None:
        shift = {0: 3600 * 10**9, 2: -3600 * 10**9}.get(k, 0)
        for n, line in enumerate(lines):
            obj = json.loads(line)
            obj["time_ns"] += shift
            lines[n] = json.dumps(obj)

    assert validate_paths(_copy(tmp_path, skew), ClusterAdapter()).valid


def test_network_duplication_of_a_delivered_message_is_explained(tmp_path) -> None:
    """A leader receiving one more copy of a heartbeat response changes nothing: valid."""
    def duplicate(k: int, lines: list[str]) -> None:
        for n, line in enumerate(lines):
            obj = json.loads(line)
            if obj["event"] == "recv" and obj["msg"]["type"] == "append_resp" \
                    and obj["role"] == "leader":
                lines.insert(n + 1, line)
                for m in range(n + 1, len(lines)):
                    o = json.loads(lines[m])
                    o["seq"] += 1
                    if o["event"] == "send":
                        duplicate.renamed[o["msg"]["id"]] = f"{o['node']}:{o['seq']}"
                        o["msg"]["id"] = f"{o['node']}:{o['seq']}"
                    lines[m] = json.dumps(o)
                return

    duplicate.renamed = {}
    paths = _copy(tmp_path, duplicate)
    leader = next(k for k, p in enumerate(paths) if len(_lines(p)) != len(_lines(FAULTS[k])))
    for k, p in enumerate(paths):   # receives follow their renamed sends
        lines = _lines(p)
        for n, line in enumerate(lines):
            o = json.loads(line)
            if o["event"] == "recv" and o["msg"]["id"] in duplicate.renamed and k != leader:
                o["msg"]["id"] = duplicate.renamed[o["msg"]["id"]]
                lines[n] = json.dumps(o)
        Path(p).write_text("\n".join(lines) + "\n")
    verdict = validate_paths(paths, ClusterAdapter())
    assert verdict.valid, verdict.to_json()["first_unexplained"]


def test_duplication_is_rejected_when_the_model_disables_it(tmp_path, capsys) -> None:
    model = tmp_path / "nodup.yaml"
    model.write_text((MODELS_DIR / "figure2_faults2.yaml").read_text()
                     .replace("duplicate: true", "duplicate: false"))
    assert main(["validate", "--model", str(model), *FAULTS]) == 1
    assert main(["validate", "--model", str(MODELS_DIR / "figure2_faults2.yaml"), *FAULTS]) == 0


def test_a_model_of_another_variant_is_bad_input(capsys) -> None:
    assert main(["validate", "--model", str(MODELS_DIR / "default.yaml"), *FAULTS]) == 2
    assert "variant" in capsys.readouterr().err


@pytest.mark.parametrize("case, field", [
    ("malformed", None),
    ("unknown_event", "event"),
    ("missing_field", "term"),
    ("missing_msg_field", "msg.prev_index"),
    ("seq_backwards", "seq"),
    ("snapshot_message", "msg.type"),
])
def test_bad_input_names_file_line_and_field(tmp_path, capsys, case: str, field) -> None:
    line_no = 7

    def spoil(k: int, lines: list[str]) -> None:
        if k != 0:
            return
        n = line_no - 1
        obj = json.loads(lines[n])
        if case == "malformed":
            lines[n] = lines[n][:-5]
            return
        if case == "unknown_event":
            obj["event"] = "teleport"
        elif case == "missing_field":
            del obj["term"]
        elif case == "missing_msg_field":
            n = next(m for m, line in enumerate(lines) if '"type":"append"' in line)
            spoil.line = n + 1
            obj = json.loads(lines[n])
            del obj["msg"]["prev_index"]
        elif case == "seq_backwards":
            obj["seq"] = 1
        elif case == "snapshot_message":
            n = next(m for m, line in enumerate(lines) if '"event":"send"' in line)
            spoil.line = n + 1
            obj = json.loads(lines[n])
            obj["msg"] = {"id": obj["msg"]["id"], "type": "snap", "from": 1, "to": 2, "term": 1,
                          "snap_index": 5, "snap_term": 1, "offset": 0, "size": 3, "done": True}
        lines[n] = json.dumps(obj)

    spoil.line = line_no
    paths = _copy(tmp_path, spoil)
    with pytest.raises(RaftspecError) as err:
        validate_paths(paths, ClusterAdapter())
    assert (err.value.path, err.value.line, err.value.field) == (paths[0], spoil.line, field)
    assert main(["validate", *paths]) == 2
    message = capsys.readouterr().err
    assert f"{paths[0]}:{spoil.line}" in message and "Traceback" not in message


def test_a_torn_last_line_is_ignored_but_a_missing_file_is_bad_input(tmp_path, capsys) -> None:
    paths = _copy(tmp_path)
    with open(paths[0], "a") as f:
        f.write('{"v":1,"node":1,"se')
    assert main(["validate", *paths]) == 0
    assert main(["validate", str(tmp_path / "nope.ndjson")]) == 2
    assert "no such trace file" in capsys.readouterr().err


def test_help_describes_the_command(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["validate", "--help"])
    out = capsys.readouterr().out
    assert "causality" in out and "Exit status" in out and "--json" in out


# ---- input that cannot be judged is exit 2, never "invalid" -----------------------------------

def _first_foreign_receive(path: str) -> tuple[int, int]:
    """(line, sender) of the first receive in ``path`` of a message sent by another node."""
    for n, line in enumerate(_lines(path), 1):
        obj = json.loads(line)
        if obj["event"] == "recv" and obj["msg"]["from"] != obj["node"]:
            return n, obj["msg"]["from"]
    raise AssertionError("no receive")


def test_a_missing_node_file_is_an_incomplete_trace_exit_2(capsys) -> None:
    line, sender = _first_foreign_receive(FAULTS[0])
    others = [p for p in FAULTS if f"node-{sender}." not in p]
    assert main(["validate", *others]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"raftspec validate: error: {others[0]}: incomplete trace: node "
                           f"{sender}'s file is missing (line {line} receives a message sent "
                           f"by node {sender})")


def test_the_same_file_twice_is_exit_2(capsys) -> None:
    assert main(["validate", *FAULTS, FAULTS[0]]) == 2
    assert "the same file is given twice" in capsys.readouterr().err


def test_one_node_in_two_files_is_exit_2(tmp_path, capsys) -> None:
    copy = tmp_path / "copy.ndjson"
    copy.write_text(Path(FAULTS[0]).read_text())
    assert main(["validate", *FAULTS, str(copy)]) == 2
    err = capsys.readouterr().err
    assert "incomplete trace: node 1's file is given twice" in err and str(copy) in err


def test_an_empty_trace_is_exit_2_not_valid(tmp_path, capsys) -> None:
    empty = tmp_path / "node-1.ndjson"
    empty.write_text("")
    assert main(["validate", str(empty)]) == 2
    assert "empty trace" in capsys.readouterr().err


def test_a_receive_whose_sender_file_is_given_but_lacks_the_send_is_still_invalid(
        tmp_path, capsys) -> None:
    """Only a file that was not given makes the input incomplete; a send missing from a given
    file is a finding about the trace (exit 1), as before."""
    line, sender = _first_foreign_receive(FAULTS[0])
    recv = json.loads(_lines(FAULTS[0])[line - 1])

    def drop_send(k: int, lines: list[str]) -> None:
        if k == sender - 1:
            lines[:] = [x for x in lines if json.loads(x).get("msg", {}).get("id")
                        != recv["msg"]["id"] or json.loads(x)["event"] != "send"]

    paths = _copy(tmp_path, drop_send)
    assert main(["validate", *paths]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"invalid: {paths[0]}:{line}: ")
    assert "the message is in flight" in out
