"""The WAL: recovery, torn tails truncated with a warning, mid-file corruption refused."""

from __future__ import annotations

import logging
import os
import pathlib
import struct
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftspec.node.errors import NodeError
from raftspec.node.messages import Entry, Snapshot
from raftspec.node.storage import (
    MARK_SIZE,
    DiskFailure,
    DiskLog,
    HighWater,
    Mark,
    _entries_record,
    _mark_slot,
    _record,
    lost_entries,
    read_mark,
)
from raftspec.node.wire import check_command


def write(path, n=5) -> DiskLog:
    d = DiskLog(str(path))
    d.load()
    d.save_hard_state(3, 2)
    for i in range(n):                               # one record per loop turn
        d.append(i + 1, [Entry(1, {"op": "put", "key": f"k{i}", "value": "v"})])
    d.sync()
    return d


def test_recovers_term_vote_and_entries(tmp_path) -> None:
    write(tmp_path).close()
    rec = DiskLog(str(tmp_path)).load()
    assert (rec.term, rec.voted_for, len(rec.entries)) == (3, 2, 5)


def test_rewriting_an_index_truncates_the_suffix_on_replay(tmp_path) -> None:
    d = write(tmp_path)
    d.append(3, [Entry(2, {"op": "noop"})])
    d.close()
    rec = DiskLog(str(tmp_path)).load()
    assert [e.term for e in rec.entries] == [1, 1, 2]


def test_torn_tail_is_truncated_with_a_warning(tmp_path, caplog) -> None:
    write(tmp_path).close()
    wal = tmp_path / "wal"
    data = wal.read_bytes()
    wal.write_bytes(data[:-7])                       # crash in the middle of the last record
    with caplog.at_level(logging.WARNING):
        rec = DiskLog(str(tmp_path)).load()
    assert len(rec.entries) == 4 and rec.truncated_bytes > 0
    assert "torn tail" in caplog.text
    assert len(wal.read_bytes()) < len(data) - 7     # the torn bytes are gone from disk


def test_garbage_last_record_is_a_torn_tail(tmp_path) -> None:
    write(tmp_path).close()
    wal = tmp_path / "wal"
    data = bytearray(wal.read_bytes())
    data[-3] ^= 0xFF                                  # checksum of the last record fails
    wal.write_bytes(bytes(data))
    assert len(DiskLog(str(tmp_path)).load().entries) == 4


def test_corruption_in_the_middle_is_an_error(tmp_path) -> None:
    write(tmp_path).close()
    wal = tmp_path / "wal"
    data = bytearray(wal.read_bytes())
    data[40] ^= 0xFF
    wal.write_bytes(bytes(data))
    with pytest.raises(NodeError, match="middle"):
        DiskLog(str(tmp_path)).load()


def test_snapshot_compacts_the_wal_and_survives_restart(tmp_path) -> None:
    d = write(tmp_path, n=10)
    snap = Snapshot(8, 1, {1: "127.0.0.1:1"}, b"image")
    d.save_snapshot(snap, 9, [Entry(1, {"op": "noop"}), Entry(1, {"op": "noop"})], 3, 2)
    d.append(11, [Entry(3, {"op": "noop"})])
    d.close()
    rec = DiskLog(str(tmp_path)).load()
    assert rec.snapshot == snap
    assert (rec.term, len(rec.entries), rec.entries[-1].term) == (3, 3, 3)


def test_corrupt_snapshot_is_an_error(tmp_path) -> None:
    d = write(tmp_path)
    d.save_snapshot(Snapshot(2, 1, {}, b"image"), 3, [], 3, 2)
    d.close()
    p = tmp_path / "snapshot"
    p.write_bytes(p.read_bytes()[:-2] + b"xx")
    with pytest.raises(NodeError, match="snapshot"):
        DiskLog(str(tmp_path)).load()


def test_a_torn_batch_record_is_lost_whole(tmp_path) -> None:
    d = write(tmp_path, 2)
    d.append(3, [Entry(2, {"op": "noop"}) for _ in range(10)])
    d.close()
    wal = tmp_path / "wal"
    wal.write_bytes(wal.read_bytes()[:-5])
    assert [e.term for e in DiskLog(str(tmp_path)).load().entries] == [1, 1]


def test_json_records_of_earlier_versions_are_still_read(tmp_path) -> None:
    import json
    import struct
    import zlib

    def rec(obj) -> bytes:
        body = json.dumps(obj).encode()
        return struct.pack("<II", len(body), zlib.crc32(body)) + body

    (tmp_path / "wal").write_bytes(rec({"k": "hs", "term": 4, "vote": 1})
                                   + rec({"k": "e", "i": 1, "t": 4, "d": {"op": "noop"}}))
    d = DiskLog(str(tmp_path))
    d.load()
    d.append(2, [Entry(4, {"op": "put", "key": "a", "value": "b"})])
    d.close()
    r = DiskLog(str(tmp_path)).load()
    assert (r.term, r.voted_for, [e.data["op"] for e in r.entries]) == (4, 1, ["noop", "put"])


HARD_STATE = _record({"k": "hs", "term": 1, "vote": 1})


@pytest.mark.parametrize("record", [
    {"k": "es", "i": 1, "t": [1], "d": [{"op": "config", "members": 5}]},
    {"k": "es", "i": 1, "t": [1], "d": [{"op": "put", "key": 5, "value": [1], "cid": "c",
                                          "seq": "x"}]},
    {"k": "es", "i": 1, "t": [1, 1], "d": [{"op": "noop"}, {"op": "rm", "key": "a"}]},
    {"k": "es", "i": 1, "t": [1], "d": [{"op": "config", "members": {"1": "h" * 300 + ":1"}}]},
    {"k": "e", "i": 1, "t": 1, "d": {"op": "append", "key": "k", "value": "v", "seq": -1}},
])
def test_a_record_with_a_valid_checksum_but_a_malformed_command_is_refused(tmp_path,
                                                                           record) -> None:
    """Before: loaded without complaint, then the node crashed on the command (an
    AttributeError in core._recompute_members: exit 4)."""
    wal = tmp_path / "wal"
    wal.write_bytes(HARD_STATE + _record(record))
    with pytest.raises(NodeError, match=f"{wal}: byte {len(HARD_STATE)}: .*refusing to start"):
        DiskLog(str(tmp_path)).load()
    assert wal.read_bytes() == HARD_STATE + _record(record)      # nothing was truncated


packable_ints = st.integers(-(2**63), 2**64 - 1)
wal_commands = st.fixed_dictionaries(
    {"op": st.sampled_from(["noop", "config", "put", "append", "get", "rm", 5, None])},
    optional={"key": st.text(max_size=300) | packable_ints | st.none(),
              "value": st.text(max_size=4) | st.none() | st.lists(packable_ints, max_size=1),
              "cid": st.text(max_size=300) | packable_ints | st.none(),
              "seq": st.integers(-2, 2**54) | st.booleans() | st.text(max_size=2) | st.none(),
              "members": packable_ints | st.dictionaries(st.text(max_size=12),
                                                         st.text(max_size=20) | packable_ints,
                                                         max_size=2)})


@settings(deadline=None, max_examples=200,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(wal_commands)
def test_a_wal_holds_only_commands_the_wire_would_carry(tmp_path, command) -> None:
    """A command with a valid checksum is loaded exactly when the wire's check accepts it;
    anything else is refused naming the file and the record, never loaded or crashed on."""
    d = pathlib.Path(tempfile.mkdtemp(dir=tmp_path))
    (d / "wal").write_bytes(HARD_STATE + _record({"k": "es", "i": 1, "t": [1, 1],
                                                  "d": [{"op": "noop"}, command]}))
    try:
        rec = DiskLog(str(d)).load()
    except NodeError as err:
        assert not check_command(command)
        assert str(err).startswith(f"{d / 'wal'}: byte {len(HARD_STATE)}: ")
        return
    assert check_command(command) and rec.entries[-1].data == command


def write_records(path, n: int) -> list[int]:
    """n one-entry records, synced one by one; returns the byte offset of each record."""
    d = DiskLog(str(path))
    d.load()
    offsets = []
    for i in range(n):
        offsets.append(os.path.getsize(path / "wal"))
        d.append(i + 1, [Entry(1, {"op": "put", "key": f"k{i}", "value": "v" * (i % 7)})])
        d.sync()
    d.close()
    return offsets


@pytest.mark.parametrize("length", [0xFFFF_FF00, 0x7FFF_0000, 60_000, 3, 0])
def test_a_damaged_length_field_mid_file_is_refused_with_file_and_offset(tmp_path,
                                                                         length) -> None:
    """Issue 11 item 3: a length pointing past the end used to be taken for a torn tail and
    the WAL silently cut there."""
    offsets = write_records(tmp_path, 30)
    wal = tmp_path / "wal"
    data = bytearray(wal.read_bytes())
    pos = offsets[10]
    struct.pack_into("<I", data, pos, length)
    wal.write_bytes(bytes(data))
    with pytest.raises(NodeError, match=f"{wal}: byte {pos}: .*refusing to start"):
        DiskLog(str(tmp_path)).load()
    assert wal.read_bytes() == bytes(data)           # nothing was truncated


@settings(deadline=None, max_examples=60,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_any_damage_before_the_last_record_is_refused(tmp_path, data) -> None:
    d = pathlib.Path(tempfile.mkdtemp(dir=tmp_path))
    offsets = write_records(d, 8)
    wal = d / "wal"
    buf = bytearray(wal.read_bytes())
    pos = data.draw(st.integers(0, offsets[-1] - 1))
    buf[pos] ^= data.draw(st.integers(1, 255))
    wal.write_bytes(bytes(buf))
    with pytest.raises(NodeError, match="refusing to start"):
        DiskLog(str(d)).load()


@settings(deadline=None, max_examples=40,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_cut_or_damaged_last_record_is_truncated_and_the_rest_kept(tmp_path, data) -> None:
    d = pathlib.Path(tempfile.mkdtemp(dir=tmp_path))
    offsets = write_records(d, 8)
    wal = d / "wal"
    buf = bytearray(wal.read_bytes())
    if data.draw(st.booleans()):
        buf = buf[:data.draw(st.integers(offsets[-1] + 1, len(buf) - 1))]
    else:
        buf[data.draw(st.integers(offsets[-1], len(buf) - 1))] ^= data.draw(st.integers(1, 255))
    wal.write_bytes(bytes(buf))
    rec = DiskLog(str(d)).load()
    assert [e.data["key"] for e in rec.entries] == [f"k{i}" for i in range(7)]
    assert os.path.getsize(wal) == offsets[-1]


def test_a_failed_write_raises_disk_failure_and_nothing_counts_as_written(tmp_path) -> None:
    d = DiskLog(str(tmp_path))
    d.load()
    d.append(1, [Entry(1, {"op": "noop"})])
    d.sync()
    d.fail_writes = True
    d.append(2, [Entry(1, {"op": "noop"})])
    with pytest.raises(DiskFailure, match="wal: write/fsync failed"):
        d.sync()
    d.abandon()
    assert len(DiskLog(str(tmp_path)).load().entries) == 1


def test_an_unwritable_data_dir_is_a_node_error(tmp_path) -> None:
    (tmp_path / "wal").mkdir()                      # EISDIR: cannot be opened for writing
    with pytest.raises(NodeError, match="wal"):
        DiskLog(str(tmp_path)).load()


# ---------------------------------------------------------------------- the high-water mark
EVERY = 4                                    # raise the mark at least every 4 entries


class MarkedNode:
    """Drives a DiskLog and a HighWater the way the node's loop does (node/server.py), and
    keeps its own model of what is durable: terms of the log by index, and the hard state."""

    def __init__(self, path: str) -> None:
        self.disk = DiskLog(path)
        rec = self.disk.load()
        self.hw = HighWater(rec.mark, EVERY, float("inf"))   # no timer: only counts
        self.base, self.base_term = 0, 0
        self.terms: list[int] = []            # terms of entries base+1 ...
        self.term, self.vote = 0, None

    @property
    def last(self) -> int:
        return self.base + len(self.terms)

    def term_at(self, i: int) -> int | None:
        if i == self.base:
            return self.base_term
        return self.terms[i - self.base - 1] if self.base < i <= self.last else None

    def turn(self, op: tuple, stop_after_premark: bool = False) -> None:
        kind = op[0]
        snap = None
        append_from, entries, hard = 0, [], False
        if kind == "append":                       # (from, count): a leader's or follower's
            append_from = min(max(op[1], self.base + 1), self.last + 1)
            entries = [Entry(self.term or 1, {"op": "noop"}) for _ in range(op[2])]
        elif kind == "vote":
            self.term, self.vote, hard = self.term + 1, op[1], True
        elif kind == "snapshot":                   # an InstallSnapshot at index last + op[1]
            snap = Snapshot(max(self.base + 1, self.last + op[1]), self.term or 1,
                            {1: "127.0.0.1:1"}, b"kv")
        pre = self.hw.before_write(append_from, self.term_at(append_from - 1)
                                   if append_from else None, snap)
        if pre is not None:
            self.disk.write_mark(pre)
        if stop_after_premark:
            return
        if snap is not None:
            self.disk.save_snapshot(snap, snap.index + 1, [], self.term, self.vote)
            self.base, self.base_term, self.terms = snap.index, snap.term, []
        if entries:
            self.disk.append(append_from, entries)
            del self.terms[append_from - self.base - 1:]
            self.terms += [e.term for e in entries]
        if hard:
            self.disk.save_hard_state(self.term, self.vote)
        self.disk.sync()
        post = self.hw.after_sync(self.last, self.term_at(self.last) or 0, self.term,
                                  self.vote, 0.0, hard)
        if post is not None:
            self.disk.write_mark(post)


ops = st.lists(st.one_of(
    st.tuples(st.just("append"), st.integers(1, 40), st.integers(1, 6)),
    st.tuples(st.just("vote"), st.one_of(st.none(), st.integers(1, 5))),
    st.tuples(st.just("snapshot"), st.integers(-3, 3))), min_size=1, max_size=20)


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.data())
def test_the_mark_never_claims_more_than_the_wal_holds_so_a_crash_is_never_a_loss(
        ops_, data) -> None:
    """Whatever the sequence (appends, rewrites below the mark, votes, snapshots), a crash —
    after any turn, between lowering the mark and the WAL write, with a torn last record, or
    with the newest mark slot torn — never counts as a loss; and the mark lags the WAL by
    fewer than EVERY entries and never lags the hard state."""
    with tempfile.TemporaryDirectory() as d:
        node = MarkedNode(d)
        stopped = False
        for k, op in enumerate(ops_):
            stopped = k == len(ops_) - 1 and data.draw(st.booleans())
            node.turn(op, stop_after_premark=stopped)
            if not stopped:
                m = node.hw.mark
                assert m.index <= node.last and node.last - m.index < EVERY
                assert node.term_at(m.index) in (None, m.log_term) or m.log_term == 0
                assert (m.term, m.vote) == (node.term, node.vote)
        seq = node.disk._mark_seq
        node.disk.abandon()
        wal = pathlib.Path(d, "wal")
        tail = data.draw(st.sampled_from(["none", "torn_record", "torn_mark"]))
        if tail == "torn_record" and not stopped:  # a record being written at the crash
            rec = _entries_record(node.last + 1, [Entry(9, {"op": "noop"})])
            cut = data.draw(st.integers(1, len(rec) - 1))
            with open(wal, "ab") as f:
                f.write(rec[:cut])
        elif tail == "torn_mark":                  # the next mark write, torn: it claims a lot
            slot = bytearray(_mark_slot(seq + 1, Mark(10 ** 6, 7, 7, 1, 0)))
            slot[data.draw(st.integers(0, MARK_SIZE - 1))] ^= 0x40
            with open(pathlib.Path(d, "mark"), "r+b") as f:
                f.seek((seq % 2) * MARK_SIZE)
                f.write(slot[:data.draw(st.integers(1, MARK_SIZE))])
        rec = DiskLog(d).load()
        assert lost_entries(rec) is None
        assert [e.term for e in rec.entries] == node.terms


@settings(deadline=None, max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(ops, st.data())
def test_a_wal_cut_below_the_mark_is_reported_and_one_at_or_above_it_is_not(ops_,
                                                                           data) -> None:
    """Cut the WAL anywhere (disk loss, a truncated file): the loss is reported exactly when
    the WAL no longer reaches the mark's index or its hard state, the two things the node
    may have acknowledged; the message says what the WAL holds and what the mark says."""
    with tempfile.TemporaryDirectory() as d:
        node = MarkedNode(d)
        logs = [(node.base, node.base_term, list(node.terms))]   # the log after each turn
        for op in ops_:
            node.turn(op)
            logs.append((node.base, node.base_term, list(node.terms)))
        node.disk.close()
        mark = read_mark(os.path.join(d, "mark"))
        assert mark == node.hw.mark
        wal = pathlib.Path(d, "wal")
        buf = wal.read_bytes()
        wal.write_bytes(buf[:data.draw(st.integers(0, len(buf)))])
        rec = DiskLog(d).load()
        # a cut WAL is the log as it was after some turn, or a prefix of it (a cut may fall
        # before a rewrite of lower indexes: it then holds the entries the rewrite replaced)
        terms = [e.term for e in rec.entries]
        base = rec.last_index - len(terms)
        matching = [b_term for b, b_term, t in logs if b == base and t[:len(terms)] == terms]
        assert matching, (terms, logs)
        last_term = terms[-1] if terms else matching[0]
        lost = rec.last_index < mark.index or (rec.term, rec.voted_for) != (node.term, node.vote)
        msg = lost_entries(rec)
        assert (msg is not None) == lost, (msg, rec.last_index, mark)
        if msg is not None:
            assert msg.startswith(f"the WAL holds entries up to index {rec.last_index} (term "
                                  f"{last_term}), current term {rec.term}")


def test_a_mark_file_with_both_slots_damaged_is_refused(tmp_path) -> None:
    node = MarkedNode(str(tmp_path))
    for op in [("append", 1, 5), ("vote", 2), ("append", 9, 5)]:
        node.turn(op)
    node.disk.close()
    path = tmp_path / "mark"
    path.write_bytes(b"\0" * len(path.read_bytes()))
    with pytest.raises(NodeError, match=f"{path}: damaged"):
        DiskLog(str(tmp_path)).load()
