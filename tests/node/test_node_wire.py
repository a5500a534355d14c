"""Datagram decoding: every malformed input is a BadDatagram with a reason, never a crash."""

from __future__ import annotations

import contextlib
import json
import struct
import zlib

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftspec.node.kv import MAX_VALUE_BYTES, BadImage, KVStore
from raftspec.node.messages import APPEND, Entry, Message
from raftspec.node.wire import (
    FRAGMENT_BYTES,
    MAX_ENTRIES,
    MAX_INCOMPLETE,
    BadDatagram,
    Reassembler,
    _frame,
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


def frame(payload: bytes, flags: int = 0) -> bytes:
    """A datagram with a correct header and CRC around ``payload``."""
    return _frame(payload, None, flags)


def flipped(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


@pytest.mark.parametrize("data, reason", [
    (b"RS", "truncated"),
    (b"XX\x03\x00\x00\x00\x00\x00{}", "bad_magic"),
    (b"RS\x09\x00\x00\x00\x00\x00{}", "bad_version"),
    (b"RS\x02\x00\x81\xa1k\xa6status", "bad_version"),        # version 2: no checksum
    (b"RS\x01\x00{}\x00\x00\x00\x00", "bad_version"),
    (b"RS\x03\x08" + frame(b"\x80")[4:], "bad_flags"),
    (frame(b"\xc1"), "bad_body"),
    (frame(b"\x92\x01"), "bad_body"),
    (frame(b"\x92\x01\x02"), "bad_fields"),
    (frame(msgpack.packb({"k": "status"}))[:-1], "bad_crc"),
    (flipped(frame(msgpack.packb({"k": "req", "seq": 7})), 100), "bad_crc"),
    (frame(b" " * 70_000), "oversized"),
    (frame(b"\x00" * 20, flags=2), "fragment"),
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
        body = decode(frame(data), None)
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
        body_to_message(decode(frame(msgpack.packb(body)), None))


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


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=False)
    | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=8)
sessions = st.lists(st.integers(-1, 2**54) | json_values,
                    min_size=2, max_size=2) | json_values
kv_shaped = st.fixed_dictionaries({
    "data": st.dictionaries(st.text(max_size=300), st.text(max_size=4) | json_values,
                            max_size=3) | json_values,
    "sessions": st.dictionaries(st.text(max_size=300), sessions, max_size=3) | json_values})


def compressed(value) -> bytes:
    return zlib.compress(json.dumps(value).encode())


@RELAXED
@given(st.one_of(st.binary(max_size=60), json_values.map(compressed), kv_shaped.map(compressed),
                 st.binary(max_size=40).map(zlib.compress)))
def test_a_snapshot_image_is_used_only_whole_and_well_formed(blob) -> None:
    """A snapshot from a peer or from the disk: either every key, value and session is of the
    type and range the wire allows for a command, or BadImage and the kv is unchanged (before:
    zlib.error, TypeError, ... out of restore, or a session the server cannot use)."""
    kv = KVStore()
    kv.apply({"op": "put", "key": "a", "value": "1", "cid": "c", "seq": 1})
    before = kv.snapshot()
    try:
        kv.restore(blob)
    except BadImage:
        assert kv.snapshot() == before
        return
    assert all(isinstance(k, str) and len(k) <= 256 and isinstance(v, str)
               for k, v in kv.data.items())
    for cid, (seq, result) in kv.sessions.items():
        assert isinstance(cid, str) and len(cid) <= 256
        assert type(seq) is int and 0 <= seq <= 2**53
        assert isinstance(result, str) or set(result) <= {"err", "limit"}
    kv2 = KVStore()
    kv2.restore(kv.snapshot())
    assert (kv2.data, kv2.sessions) == (kv.data, kv.sessions)


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
    assert shared == encode_message(m, SECRET) and len(shared) == 1
    assert body_to_message(decode(shared[0], SECRET)) == m


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


@RELAXED
@given(st.dictionaries(st.sampled_from(["k", "cid", "seq", "op", "key", "value"]),
                       st.one_of(st.integers(0, 9), st.text(max_size=8))),
       st.integers(0, 10_000))
def test_every_flipped_bit_is_caught_without_hmac(body, bit) -> None:
    """Issue 11 item 6: with no secret a bit-flipped request (say, its seq) used to be applied
    as a different command; now every datagram carries a CRC32 and a flip is bad_crc."""
    body["k"] = "req"
    data = encode(body, None)
    bit %= len(data) * 8
    with pytest.raises(BadDatagram):
        decode(flipped(data, bit), None)


@pytest.mark.parametrize("body", [
    {"k": "vote", "s": 1, "d": 2, "t": 2**64 - 1},               # term + 1 overflowed msgpack
    {"k": "vote", "s": 1, "d": 2, "t": 2**53 + 1},
    {"k": "vote", "s": 0, "d": 2, "t": 1},
    {"k": "vote", "s": 2**31, "d": 2, "t": 1},
    {"k": "vote", "s": 1, "d": 2, "t": 3, "llt": 4},             # log newer than its term
    {"k": "append", "s": 1, "d": 2, "t": 3, "pt": 9},
    {"k": "append", "s": 1, "d": 2, "t": 3, "c": 2**60},
    {"k": "append", "s": 1, "d": 2, "t": 3, "e": [[4, {"op": "noop"}]]},
    {"k": "append", "s": 1, "d": 2, "t": 3, "e": [[3, {"op": "put", "key": 5}]]},
    {"k": "append", "s": 1, "d": 2, "t": 3, "e": [[3, {"op": "rm", "key": "a"}]]},
    {"k": "append", "s": 1, "d": 2, "t": 3,
     "e": [[3, {"op": "config", "members": {"1": "nowhere"}}]]},
    {"k": "append", "s": 1, "d": 2, "t": 3, "e": [[3, {"op": "noop"}]] * (MAX_ENTRIES + 1)},
    {"k": "snap", "s": 1, "d": 2, "t": 3, "mem": {"1": "127.0.0.1:99999"}},
    {"k": "snap", "s": 1, "d": 2, "t": 3, "mem": {"0": "127.0.0.1:9"}},
    {"k": "snap", "s": 1, "d": 2, "t": 3, "mem": {"\u00b2": "127.0.0.1:9"}},   # int() refuses
    {"k": "append_resp", "s": 1, "d": 2, "t": 3, "mid": "x" * 1000},
])
def test_out_of_range_fields_are_rejected_on_decode(body) -> None:
    """Issue 11 item 5: terms, indexes, ids, counts and lengths are range-checked."""
    with pytest.raises(BadDatagram, match="bad_fields"):
        body_to_message(msgpack.unpackb(msgpack.packb(body)))


@pytest.mark.parametrize("secret", [None, SECRET])
def test_a_message_larger_than_a_datagram_travels_in_fragments(secret) -> None:
    """Issue 11 item 1: an AppendEntries carrying a 1 MiB value used to be dropped by every
    follower as oversized. Fragments may arrive in any order and twice."""
    big = "x" * (1 << 20)
    m = Message(APPEND, 1, 2, 3, prev_index=4, prev_term=2, commit=4,
                entries=[Entry(3, {"op": "put", "key": "k", "value": big, "cid": "c",
                                   "seq": 1})])
    datagrams = encode_message(m, secret)
    assert len(datagrams) > 10 and all(len(d) <= 65_000 for d in datagrams)
    order = datagrams[::-1] + datagrams[:3]
    r = Reassembler()
    got = [b for d in order if (b := r.feed(d, ("h", 1), secret)) is not None]
    assert len(got) == 1 and body_to_message(got[0]) == m
    with pytest.raises(BadDatagram, match="fragment"):
        decode(datagrams[0], secret)


def test_a_lost_fragment_costs_its_message_and_memory_stays_bounded() -> None:
    r = Reassembler(max_bytes=3 * FRAGMENT_BYTES)
    for k in range(20):                                   # 20 messages, each missing a piece
        body = {"k": "resp", "rid": k, "ok": True, "value": "v" * 200_000}
        for d in encode_batches([body], None)[1:]:
            assert r.feed(d, ("h", 1), None) is None
        assert r._held <= 3 * FRAGMENT_BYTES + FRAGMENT_BYTES
    whole = encode_batches([{"k": "resp", "rid": 99, "value": "w" * 150_000}], None)
    assert [r.feed(d, ("h", 2), None) for d in whole][-1]["value"] == "w" * 150_000


def test_a_value_above_the_limit_is_refused_and_changes_nothing() -> None:
    """Issue 11 item 1, the other side of the limit: at apply time, on every replica alike."""
    kv = KVStore()
    limit = MAX_VALUE_BYTES
    assert kv.apply({"op": "put", "key": "a", "value": "x" * limit, "cid": "c", "seq": 1}) \
        == "x" * limit
    assert kv.apply({"op": "append", "key": "a", "value": "y", "cid": "c", "seq": 2}) == \
        {"err": "value_too_large", "limit": limit}
    assert kv.apply({"op": "put", "key": "b", "value": "é" * (limit // 2 + 1), "cid": "c",
                     "seq": 3})["err"] == "value_too_large"
    assert kv.data == {"a": "x" * limit}
    assert kv.apply({"op": "append", "key": "z", "value": "x" * (limit - 1), "cid": "c",
                     "seq": 4}) == "x" * (limit - 1)
    assert kv.apply({"op": "append", "key": "z", "value": "x", "cid": "c", "seq": 5}) == "x"


def test_a_command_older_than_its_session_is_not_applied() -> None:
    """Issue 11 item 6: a stale seq returns None (the server answers stale_seq, never ok)."""
    kv = KVStore()
    kv.apply({"op": "append", "key": "a", "value": "1", "cid": "c", "seq": 5})
    assert kv.apply({"op": "append", "key": "a", "value": "2", "cid": "c", "seq": 3}) is None
    assert kv.data["a"] == "1" and kv.last_seq("c") == 5


def test_many_tiny_fragments_cannot_pile_up() -> None:
    r = Reassembler()
    for mid in range(5_000):                       # 5,000 messages of 2 parts, one part each
        r.feed(_frame(struct.pack("<QHH", mid, 0, 2) + b"x", None, 2), ("h", 1), None)
    assert len(r._parts) <= MAX_INCOMPLETE
