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
from raftspec.node.storage import DiskFailure, DiskLog


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
