"""check_event: every field the schema declares is checked for its type and range, and a bad one
is a TraceSchemaError naming that field."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from raftspec.node import wire
from raftspec.traces.schema import (
    EVENTS,
    MAX_ID,
    MAX_MEMBERS,
    MSG_COMMON,
    MSG_FIELDS,
    OPTIONAL_EVENT_FIELDS,
    STATE_FIELDS,
    TraceSchemaError,
    check_event,
)

NODE_2 = (Path(__file__).parent / "data" / "faults" / "node-2.ndjson").read_text().splitlines()
INIT = json.loads(NODE_2[0])          # node 2's init: members 1, 2, 3
SEND = json.loads(NODE_2[45])         # node 2 (voted for itself) sends an append to node 3


def edited(event: dict, field: str, value) -> dict:
    """A copy of ``event`` with ``field`` (``msg.x`` for a message field) set to ``value``."""
    out = copy.deepcopy(event)
    target, _, name = field.rpartition(".")
    (out["msg"] if target else out)[name] = value
    return out


ID_FIELDS = ("node", "voted_for", "msg.from", "msg.to")
out_of_range = st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_ID + 1))


def test_the_id_bounds_are_the_nodes() -> None:
    assert (MAX_ID, MAX_MEMBERS) == (wire.MAX_ID, wire.MAX_MEMBERS)


@given(field=st.sampled_from(ID_FIELDS), node=st.one_of(st.integers(1, MAX_ID), out_of_range))
def test_a_node_id_is_taken_only_in_1_to_2_31_minus_1(field: str, node: int) -> None:
    """As the node's wire and --id take it; out of range, the error names the field."""
    event = edited(SEND, field, node)
    if 0 < node <= MAX_ID:
        check_event(event, "f.ndjson:4")
    else:
        with pytest.raises(TraceSchemaError, match=f"^f.ndjson:4: {field}: node id "):
            check_event(event, "f.ndjson:4")


@given(key=st.one_of(out_of_range.map(str),
                     st.sampled_from(["", "²", "٣", "-1", "+1", "1.0", " 1", "0x1", "9" * 5000])))
def test_a_member_id_that_is_not_a_decimal_node_id_is_refused(key: str) -> None:
    members = dict(INIT["members"], **{key: "127.0.0.1:9000"})
    with pytest.raises(TraceSchemaError, match="^members: node id "):
        check_event(edited(INIT, "members", members))


def test_more_members_than_a_configuration_holds_are_refused() -> None:
    members = {str(k): "127.0.0.1:9000" for k in range(1, MAX_MEMBERS + 2)}
    check_event(edited(INIT, "members", dict(list(members.items())[:MAX_MEMBERS])))
    with pytest.raises(TraceSchemaError, match="^members: more than 1000 members"):
        check_event(edited(INIT, "members", members))


def recorded_events() -> list[dict]:
    """One recorded event of each kind (and message type) in the recorded traces."""
    seen: dict[tuple[str, str | None], dict] = {}
    for path in sorted((Path(__file__).parent / "data").glob("*/node-*.ndjson")):
        for line in path.read_text().splitlines():
            obj = json.loads(line)
            seen.setdefault((obj["event"], obj.get("msg", {}).get("type")), obj)
    return list(seen.values())


def test_true_is_not_a_number_in_any_int_field() -> None:
    """Every field the schema declares an int (of the event, of its kind, of its message) is
    refused as ``true``, naming the field; message fields used to take it as 1."""
    taken = []
    for event in recorded_events():
        fields = {**STATE_FIELDS, **EVENTS[event["event"]],
                  **OPTIONAL_EVENT_FIELDS.get(event["event"], {})}
        if "msg" in event:
            fields |= {f"msg.{name}": types for name, types in
                       {**MSG_COMMON, **MSG_FIELDS[event["msg"]["type"]]}.items()}
        for field, types in fields.items():
            if int in types and bool not in types:
                try:
                    check_event(edited(event, field, True))
                    taken.append((event["event"], field))
                except TraceSchemaError as err:
                    assert str(err).startswith(f"{field}: "), err
    assert not taken


@pytest.mark.parametrize("term", [True, "1", 1.0, None])
def test_an_entry_term_that_is_not_an_int_is_refused(term) -> None:
    """``entries`` lists the entries' terms; ``[true]`` used to be a term 1 (valid)."""
    event = next(e for e in recorded_events() if e.get("msg", {}).get("type") == "append")
    with pytest.raises(TraceSchemaError, match="^msg.entries: "):
        check_event(edited(event, "msg.entries", [term]))
