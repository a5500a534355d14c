"""Durable Raft state: an append-only, checksummed write-ahead log plus a snapshot file.

Persistent state is what Figure 2 lists (current_term, voted_for, log[]) and the snapshot of §7.
Every record is ``[length u32][crc32 u32][payload]``, the payload a MessagePack map (a payload
starting with ``{`` is read as JSON: the format of earlier versions). Records:
``{"k": "hs", "term": T, "vote": V}`` (hard state) and ``{"k": "es", "i": I, "t": [T...],
"d": [CMD...]}`` (a batch of entries from index I; writing index I discards any entry >= I first,
so conflict truncation is just an append; the older one-entry record ``{"k": "e", "i", "t", "d"}``
is still read). One record per loop turn's batch: a torn batch is lost whole, which is safe since
nothing was sent that depended on it. ``sync()`` is one fsync covering everything written since
the last one; the loop calls it before sending any message that depends on those records.

Recovery: a record cut short or failing its checksum *at the end of the file* is a torn write from
a crash: the tail is truncated with a warning. A bad record followed by more data is corruption
in the middle and raises ``NodeError`` (we refuse to guess).
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from dataclasses import dataclass, field

import msgpack

from raftspec.node.errors import NodeError
from raftspec.node.messages import Entry, Snapshot

log = logging.getLogger("raftspec.node.storage")

HEADER = struct.Struct("<II")
MAX_RECORD = 16 * 1024 * 1024


@dataclass
class Recovered:
    term: int = 0
    voted_for: int | None = None
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)
    truncated_bytes: int = 0


def _record(payload: dict) -> bytes:
    body = msgpack.packb(payload)
    return HEADER.pack(len(body), zlib.crc32(body)) + body


def _entries_record(first_index: int, entries: list[Entry]) -> bytes:
    return _record({"k": "es", "i": first_index, "t": [e.term for e in entries],
                    "d": [e.data for e in entries]})


def _load_payload(body: bytes) -> object:
    if body[:1] == b"{":
        return json.loads(body)
    return msgpack.unpackb(body)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DiskLog:
    """The node's data directory: ``wal`` (records) and ``snapshot`` (one checksummed record)."""

    def __init__(self, data_dir: str) -> None:
        self.dir = data_dir
        try:
            os.makedirs(data_dir, exist_ok=True)
        except OSError as err:
            raise NodeError(f"cannot create data dir {data_dir}: {err.strerror}") from err
        self.wal_path = os.path.join(data_dir, "wal")
        self.snap_path = os.path.join(data_dir, "snapshot")
        self._f = None
        self._dirty = False

    # ------------------------------------------------------------------ recovery
    def load(self) -> Recovered:
        rec = Recovered()
        if os.path.exists(self.snap_path):
            rec.snapshot = self._load_snapshot()
        base = rec.snapshot.index if rec.snapshot else 0
        entries: list[Entry] = []
        if os.path.exists(self.wal_path):
            with open(self.wal_path, "rb") as f:
                buf = f.read()
            pos = 0
            while pos < len(buf):
                payload, end = self._parse(buf, pos)
                if payload is None:
                    log.warning("%s: torn tail at byte %d (%d bytes) truncated",
                                self.wal_path, pos, len(buf) - pos)
                    rec.truncated_bytes = len(buf) - pos
                    with open(self.wal_path, "r+b") as f:
                        f.truncate(pos)
                        os.fsync(f.fileno())
                    break
                pos = end
                if payload.get("k") == "hs":
                    rec.term, rec.voted_for = int(payload["term"]), payload["vote"]
                elif payload.get("k") in ("e", "es"):
                    i = int(payload["i"])
                    if payload["k"] == "e":
                        batch = [Entry(int(payload["t"]), payload["d"])]
                    else:
                        batch = [Entry(int(t), d) for t, d in zip(payload["t"], payload["d"],
                                                                   strict=True)]
                    if i + len(batch) - 1 <= base:
                        continue
                    if i > base + len(entries) + 1:
                        raise NodeError(f"{self.wal_path}: byte {pos}: entry {i} leaves a gap "
                                        f"after {base + len(entries)} (corrupt log)")
                    if i <= base:
                        batch, i = batch[base + 1 - i:], base + 1
                    del entries[i - base - 1:]
                    entries.extend(batch)
        rec.entries = entries
        self._f = open(self.wal_path, "ab")  # noqa: SIM115
        return rec

    def _parse(self, buf: bytes, pos: int) -> tuple[dict | None, int]:
        """Parse the record at ``pos``; (None, pos) for a torn tail; raise on mid-file damage."""
        if pos + HEADER.size > len(buf):
            return None, pos
        length, crc = HEADER.unpack_from(buf, pos)
        end = pos + HEADER.size + length
        if length > MAX_RECORD or end > len(buf):
            if length > MAX_RECORD and end < len(buf):
                raise NodeError(f"{self.wal_path}: byte {pos}: record length {length} is "
                                "corrupt and data follows it")
            return None, pos
        body = buf[pos + HEADER.size:end]
        ok = zlib.crc32(body) == crc
        payload = None
        if ok:
            try:
                payload = _load_payload(body)
            except Exception:                 # json or msgpack: undecodable is corrupt
                ok = False
        if not ok or not isinstance(payload, dict):
            if end == len(buf):
                return None, pos
            raise NodeError(f"{self.wal_path}: byte {pos}: checksum mismatch in the middle of "
                            "the log (corruption, not a torn write); refusing to start")
        return payload, end

    def _load_snapshot(self) -> Snapshot:
        with open(self.snap_path, "rb") as f:
            buf = f.read()
        if len(buf) < HEADER.size:
            raise NodeError(f"{self.snap_path}: truncated snapshot")
        length, crc = HEADER.unpack_from(buf, 0)
        body = buf[HEADER.size:HEADER.size + length]
        if len(body) != length or zlib.crc32(body) != crc:
            raise NodeError(f"{self.snap_path}: snapshot checksum mismatch (corrupt)")
        meta_len = int.from_bytes(body[:4], "little")
        meta = json.loads(body[4:4 + meta_len])
        return Snapshot(int(meta["index"]), int(meta["term"]),
                        {int(k): v for k, v in meta["members"].items()}, body[4 + meta_len:])

    # ------------------------------------------------------------------ writing
    def append(self, first_index: int, entries: list[Entry]) -> None:
        """Write entries starting at ``first_index`` (implicitly truncating from there)."""
        assert self._f is not None
        self._f.write(_entries_record(first_index, entries))
        self._dirty = True

    def save_hard_state(self, term: int, voted_for: int | None) -> None:
        assert self._f is not None
        self._f.write(_record({"k": "hs", "term": term, "vote": voted_for}))
        self._dirty = True

    def sync(self) -> None:
        """fsync everything written so far (Figure 2: persist before responding to RPCs)."""
        if self._dirty and self._f is not None:
            self._f.flush()
            os.fsync(self._f.fileno())
            self._dirty = False

    def save_snapshot(self, snap: Snapshot, first_index: int, entries: list[Entry], term: int,
                      voted_for: int | None) -> None:
        """Persist ``snap`` and rewrite the WAL to hold only what follows it (atomic renames)."""
        meta = json.dumps({"index": snap.index, "term": snap.term,
                           "members": {str(k): v for k, v in snap.members.items()}}).encode()
        body = len(meta).to_bytes(4, "little") + meta + snap.data
        tmp = self.snap_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(HEADER.pack(len(body), zlib.crc32(body)) + body)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.snap_path)
        tmp = self.wal_path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(_record({"k": "hs", "term": term, "vote": voted_for}))
            if entries:
                f.write(_entries_record(first_index, entries))
            f.flush()
            os.fsync(f.fileno())
        if self._f is not None:
            self._f.close()
        os.replace(tmp, self.wal_path)
        _fsync_dir(self.dir)
        self._f = open(self.wal_path, "ab")  # noqa: SIM115
        self._dirty = False

    def close(self) -> None:
        if self._f is not None:
            self.sync()
            self._f.close()
            self._f = None
