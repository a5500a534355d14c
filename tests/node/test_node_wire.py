"""Datagram decoding: every malformed input is a BadDatagram with a reason, never a crash."""

from __future__ import annotations

import contextlib

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftspec.node.kv import KVStore
from raftspec.node.messages import APPEND, Entry, Message
from raftspec.node.wire import (
    BadDatagram,
    body_to_message,
    decode,
    encode,
    encode_batches,
    encode_message,
    message_to_body,
    pack_entries,
)

SECRET = b"k3y"


def test_round_trip_keeps_every_field() -> None:
    m = Message(APPEND, 1, 2, 7, prev_index=3, prev_term=6, commit=3, msg_id="1:9",
                entries=[Entry(7, {"op": "put", "key": "a", "value": "b"})])
    assert body_to_message(decode(encode(message_to_body(m), SECRET), SECRET)) == m


@pytest.mark.parametrize("data, reason", [
    (b"RS", "truncated"),
    (b"XX\x01\x00{}", "bad_magic"),
    (b"RS\x09\x00{}", "bad_version"),
    (b"RS\x02\x00\xc1", "bad_body"),
    (b"RS\x02\x00\x92\x01", "bad_body"),
    (b"RS\x01\x00{}", "bad_version"),
    (b"RS\x02\x00\x92\x01\x02", "bad_fields"),
    (b"RS\x02\x00" + b" " * 70_000, "oversized"),
])
def test_malformed_datagrams_are_rejected_with_a_reason(data, reason) -> None:
    with pytest.raises(BadDatagram, match=reason):
        decode(data, None)


@pytest.mark.parametrize("body", [
    {"k": "append", "s": 1, "d": 2, "t": "7"},
    {"k": "append", "s": 1, "d": 2, "t": 7, "e": [[1]]},
    {"k": "append", "s": 1, "d": 2, "t": 7, "pi": -1},
    {"k": "vote", "s": 1, "d": 2, "t": 7, "g": 1},
    {"k": "nope", "s": 1, "d": 2, "t": 7},
])
def test_fields_of_the_wrong_type_are_rejected(body) -> None:
    with pytest.raises(BadDatagram):
        body_to_message(decode(encode(body, None), None))


def test_hmac_is_required_and_checked() -> None:
    good = encode({"k": "status"}, SECRET)
    assert decode(good, SECRET)["k"] == "status"
    with pytest.raises(BadDatagram, match="missing_mac"):
        decode(encode({"k": "status"}, None), SECRET)
    with pytest.raises(BadDatagram, match="bad_mac"):
        decode(encode({"k": "status"}, b"other"), SECRET)
    with pytest.raises(BadDatagram, match="unexpected_mac"):
        decode(good, None)


RELAXED = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@RELAXED
@given(st.binary(max_size=300))
def test_random_bytes_never_escape_as_other_exceptions(data) -> None:
    try:
        body = decode(b"RS\x02\x00" + data, None)
        body_to_message(body)
    except BadDatagram:
        pass


@RELAXED
@given(st.dictionaries(st.sampled_from(["k", "s", "d", "t", "e", "pi", "mem", "ch", "ok"]),
                       st.one_of(st.integers(-3, 3), st.text(max_size=3), st.booleans(),
                                 st.lists(st.integers(-(2**63), 2**64 - 1), max_size=2),
                                 st.none())))
def test_random_bodies_never_escape_as_other_exceptions(body) -> None:
    body.setdefault("k", "append")
    with contextlib.suppress(BadDatagram):
        body_to_message(decode(b"RS\x02\x00" + msgpack.packb(body), None))


def test_kv_sessions_apply_a_retried_command_once() -> None:
    kv = KVStore()
    cmd = {"op": "append", "key": "x", "value": "a", "cid": "c1", "seq": 1}
    assert kv.apply(cmd) == "a"
    assert kv.apply(dict(cmd)) == "a"                 # the retry: answered from the session
    assert kv.data["x"] == "a"
    assert kv.apply({"op": "get", "key": "x", "cid": "c1", "seq": 2}) == "a"
    assert kv.apply({"op": "get", "key": "missing", "cid": "c2", "seq": 1}) == ""
    kv2 = KVStore()
    kv2.restore(kv.snapshot())
    assert kv2.data == kv.data and kv2.cached("c1", 2) == "a"


def test_batches_of_client_bodies_split_at_the_size_limit_and_decode_back() -> None:
    bodies = [{"k": "req", "rid": i, "key": "k", "value": "x" * 50} for i in range(40)]
    datagrams = encode_batches(bodies, SECRET, limit=1000)
    assert 1 < len(datagrams) < 40 and all(len(d) < 1000 + 100 for d in datagrams)
    decoded = [decode(d, SECRET) for d in datagrams]
    assert [b for d in decoded for b in (d["m"] if d["k"] == "batch" else [d])] == bodies
    assert decode(encode_batches(bodies[:1], None)[0], None) == bodies[0]


def test_an_append_with_shared_packed_entries_decodes_like_a_plain_one() -> None:
    entries = [Entry(3, {"op": "put", "key": f"k{i}", "value": "v"}) for i in range(5)]
    m = Message(APPEND, 1, 2, 3, prev_index=4, prev_term=2, commit=4, entries=entries)
    shared = encode_message(m, SECRET, pack_entries(entries))
    assert shared == encode_message(m, SECRET)
    assert body_to_message(decode(shared, SECRET)) == m


def test_trace_entry_fields_mark_kinds_and_hash_commands_stably() -> None:
    from raftspec.traces.schema import check_event, command_hash, entry_fields, message_fields

    cmd = {"op": "put", "key": "a", "value": "b", "cid": "c", "seq": 1}
    assert command_hash(cmd) == command_hash(dict(reversed(list(cmd.items()))))
    assert len(command_hash(cmd)) == 8 and command_hash(cmd) != command_hash(dict(cmd, seq=2))
    conf = Entry(2, {"op": "config", "members": {"1": "127.0.0.1:1"}})
    assert entry_fields(conf) == {"kind": "config", "hash": command_hash(conf.data),
                                  "members": {"1": "127.0.0.1:1"}}
    assert entry_fields(Entry(2, {"op": "noop"}))["kind"] == "noop"
    m = Message(APPEND, 1, 2, 2, msg_id="1:5", entries=[Entry(2, {"op": "noop"}), conf])
    fields = message_fields(m)
    assert fields["entry_kinds"] == ["noop", "config"]
    state = {"v": 1, "node": 1, "seq": 5, "term": 2, "role": "leader", "voted_for": 1,
             "log_len": 2, "last_log_term": 2, "commit_index": 0, "snapshot_index": 0,
             "time_ns": 1}
    check_event(dict(state, event="send", msg=fields))
    old = {k: v for k, v in fields.items() if not k.startswith("entry_")}
    check_event(dict(state, event="send", msg=old))          # readers accept older traces
    check_event(dict(state, event="client_request", index=2))
    with pytest.raises(ValueError, match="entry_kinds"):
        check_event(dict(state, event="send", msg=dict(fields, entry_kinds=["noop"])))
    with pytest.raises(ValueError, match="kind"):
        check_event(dict(state, event="client_request", index=2, kind="weird", hash="x"))
