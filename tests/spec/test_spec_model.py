"""Model files: valid ones load, and every mistake is reported at its file, line and key."""

from __future__ import annotations

import pytest

from raftspec.protocol.errors import RaftspecError
from raftspec.spec.model import MODELS_DIR, load_model, parse_model

GOOD = """\
name: tiny2
servers: 2
values: 1
bounds: {max_term: 2, max_log_length: 1, max_messages: 1}
actions: {restart: true, duplicate: false, drop: true}
symmetry: true
invariants: [election_safety, leader_append_only]
mutants: [commit_previous_term]
"""


def test_a_complete_model_loads() -> None:
    model = parse_model(GOOD, "m.yaml")
    c = model.config
    assert (model.name, c.servers, c.values, c.max_term, c.max_log_length, c.max_messages) == (
        "tiny2", 2, 1, 2, 1, 1)
    assert (c.restart, c.duplicate, c.drop) == (True, False, True)
    assert model.symmetry and c.mutants == {"commit_previous_term"}
    assert model.state_invariants == ("election_safety",)
    assert model.step_properties == ("leader_append_only",)


@pytest.mark.parametrize(
    ("replace", "by", "line", "needle"),
    [
        ("values: 1", "value: 1", 3, "value: unknown key; expected one of: name"),
        ("servers: 2", "servers: two", 2, "servers: expected an integer, got 'two'"),
        ("servers: 2", "servers: 0", 2, "servers: must be between 1 and 7, got 0"),
        ("max_term: 2", "max_term: 0", 4, "bounds.max_term: must be >= 1"),
        ("max_messages: 1", "max_msgs: 1", 4, "bounds.max_msgs: unknown key"),
        ("drop: true", "drop: yes please", 5, "actions.drop: expected true or false"),
        ("symmetry: true", "symmetry: 1", 6, "symmetry: expected true or false"),
        ("leader_append_only", "liveness", 7, "invariants: unknown name 'liveness'"),
        ("[commit_previous_term]", "commit_previous_term", 8, "mutants: expected a list"),
        ("[commit_previous_term]", "[figure8]", 8, "mutants: unknown name 'figure8'"),
        ("name: tiny2", "name: ''", 1, "name: expected a non-empty string"),
    ],
)
def test_mistakes_name_file_line_and_key(replace, by, line, needle) -> None:
    text = GOOD.replace(replace, by)
    assert text != GOOD
    with pytest.raises(RaftspecError) as err:
        parse_model(text, "m.yaml")
    message = str(err.value)
    assert message.startswith(f"m.yaml:{line}: "), message
    assert needle in message, message


def test_missing_bound_is_an_error() -> None:
    with pytest.raises(RaftspecError, match="missing bound 'max_messages'"):
        parse_model(GOOD.replace(", max_messages: 1", ""), "m.yaml")


def test_missing_required_key_and_bad_yaml() -> None:
    with pytest.raises(RaftspecError, match="missing required key 'servers'"):
        parse_model("name: x\n", "m.yaml")
    with pytest.raises(RaftspecError, match=r"m.yaml:3: not valid YAML: expected .,. or .\]."):
        parse_model("name: x\nservers: [1\n", "m.yaml")
    with pytest.raises(RaftspecError, match="empty model file"):
        parse_model("", "m.yaml")
    with pytest.raises(RaftspecError, match="m.yaml:1: model: expected a mapping"):
        parse_model("- 1\n", "m.yaml")


def test_missing_file_is_a_clear_error(tmp_path) -> None:
    with pytest.raises(RaftspecError, match="no such model file"):
        load_model(tmp_path / "nope.yaml")


def test_every_bundled_model_loads() -> None:
    paths = sorted(MODELS_DIR.rglob("*.yaml"))
    assert len(paths) >= 5
    for path in paths:
        assert load_model(path).name


def test_a_variant_rejects_mutants_it_does_not_implement() -> None:
    text = GOOD.replace("symmetry: true", "variant: figure2\nsymmetry: true")
    with pytest.raises(RaftspecError, match="m.yaml:9: mutants: commit_previous_term does not "
                                            "apply to protocol raft.tla [+] figure2: its "
                                            "AdvanceCommitIndex is not"):
        parse_model(text, "m.yaml")
    assert parse_model(text.replace("commit_previous_term", "vote_without_log_check")).config
