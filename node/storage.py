"""Durable Raft state: an append-only, checksummed write-ahead log plus a snapshot file.

Persistent state is what Figure 2 lists (current_term, voted_for, log[]) and the snapshot of §7.
Every record is ``[length|FLAG u32][crc32(payload) u32][crc32(first 8 bytes) u32][payload]``, the
payload a MessagePack map. The header checksum makes the length trustworthy: without it a damaged
length mid-file looks exactly like a record cut short at the end. Records of earlier versions
(``[length u32][crc32 u32][payload]``, FLAG bit clear; a payload starting with ``{`` is JSON) are
still read. Records: ``{"k": "hs", "term": T, "vote": V}`` (hard state) and ``{"k": "es", "i": I,
"t": [T...], "d": [CMD...]}`` (a batch of entries from index I; writing index I discards any entry
>= I first, so conflict truncation is just an append; the older one-entry record ``{"k": "e",
"i", "t", "d"}`` is still read). One record per loop turn's batch: a torn batch is lost whole,
which is safe since nothing was sent that depended on it. ``sync()`` writes everything queued
since the last one and fsyncs once; the loop calls it before sending any message that depends on
those records. A failed write or fsync raises ``DiskFailure``: the node must stop (its file may
end in a partial record, and the kernel may have dropped the dirty pages).

Recovery: only the last record may be incomplete. A record whose header is intact but which
runs past the end of the file, or fails its checksum as the very last thing in the file, is a
torn write: the tail is truncated with a warning. A record that is bad while a valid record
follows it anywhere later in the file is damage in the middle: ``NodeError`` names the file and
the byte offset and the node refuses to start (we refuse to guess).
"""

from __future__ import annotations

import errno
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

HEADER = struct.Struct("<III")
OLD_HEADER = struct.Struct("<II")
FLAG = 0x8000_0000                   # set in the length field of records with a header checksum
MAX_RECORD = 1 << 30


class DiskFailure(NodeError):
    """Writing or fsyncing the data dir failed: nothing queued since the last sync is durable."""


@dataclass
class Recovered:
    term: int = 0
    voted_for: int | None = None
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)
    truncated_bytes: int = 0


def _record(payload: dict) -> bytes:
    body = msgpack.packb(payload)
    head = struct.pack("<II", len(body) | FLAG, zlib.crc32(body))
    return head + struct.pack("<I", zlib.crc32(head)) + body


def _entries_record(first_index: int, entries: list[Entry]) -> bytes:
    return _record({"k": "es", "i": first_index, "t": [e.term for e in entries],
                    "d": [e.data for e in entries]})


def _load_payload(body: bytes) -> object:
    if body[:1] == b"{":
        return json.loads(body)
    return msgpack.unpackb(body)


def _decoded(body: bytes) -> dict | None:
    try:
        payload = _load_payload(body)
    except Exception:                         # json or msgpack: undecodable is corrupt
        return None
    return payload if isinstance(payload, dict) else None


def _record_at(buf: bytes, pos: int) -> tuple[str, int]:
    """Classify the bytes at ``pos``: ("ok", end), ("torn", pos) — a record whose header is
    intact but which the file cuts short — or ("bad", pos): a header or payload that fails."""
    if len(buf) - pos < 4:
        return "torn", pos
    (word,) = struct.unpack_from("<I", buf, pos)
    if word & FLAG:
        if pos + HEADER.size > len(buf):
            return "torn", pos
        _, crc, hcrc = HEADER.unpack_from(buf, pos)
        if zlib.crc32(buf[pos:pos + 8]) != hcrc:
            return "bad", pos
        end = pos + HEADER.size + (word & ~FLAG)
        if end > len(buf):
            return "torn", pos
        body = buf[pos + HEADER.size:end]
        if zlib.crc32(body) != crc or _decoded(body) is None:
            return ("torn" if end == len(buf) else "bad"), pos
        return "ok", end
    if pos + OLD_HEADER.size > len(buf):
        return "bad", pos
    length, crc = OLD_HEADER.unpack_from(buf, pos)
    end = pos + OLD_HEADER.size + length
    if end > len(buf):
        return "bad", pos
    body = buf[pos + OLD_HEADER.size:end]
    if zlib.crc32(body) != crc or _decoded(body) is None:
        return "bad", pos
    return "ok", end


def _valid_record_after(buf: bytes, pos: int) -> int | None:
    """Offset of the first complete, valid record starting after ``pos``, if any."""
    for q in range(pos + 1, len(buf) - OLD_HEADER.size + 1):
        if _record_at(buf, q)[0] == "ok":
            return q
    return None


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DiskLog:
    """The node's data directory: ``wal`` (records) and ``snapshot`` (one checksummed record).

    ``fail_writes`` is a fault-injection hook, set by the node's ``disk`` control request
    (``Supervisor.set_disk_fail``, used by the chaos runs' ``disk_fail`` fault; no ``ctl``
    command sends it): while set, every write and fsync fails with EIO, as a dying or
    read-only disk would.
    """

    def __init__(self, data_dir: str) -> None:
        self.dir = data_dir
        try:
            os.makedirs(data_dir, exist_ok=True)
        except OSError as err:
            raise NodeError(f"cannot create data dir {data_dir}: {err.strerror}") from err
        self.wal_path = os.path.join(data_dir, "wal")
        self.snap_path = os.path.join(data_dir, "snapshot")
        self._fd: int | None = None
        self._queued: list[bytes] = []
        self.fail_writes = False

    # ------------------------------------------------------------------ recovery
    def load(self) -> Recovered:
        try:
            return self._load()
        except OSError as err:
            raise NodeError(f"data dir {self.dir}: {err.filename or self.dir}: {err.strerror}"
                            " (is it writable?)") from err

    def _load(self) -> Recovered:
        rec = Recovered()
        if os.path.exists(self.snap_path):
            rec.snapshot = self._load_snapshot()
        base = rec.snapshot.index if rec.snapshot else 0
        entries: list[Entry] = []
        buf = b""
        if os.path.exists(self.wal_path):
            with open(self.wal_path, "rb") as f:
                buf = f.read()
        pos = 0
        while pos < len(buf):
            kind, end = _record_at(buf, pos)
            if kind == "bad":
                later = _valid_record_after(buf, pos)
                if later is not None:
                    raise NodeError(f"{self.wal_path}: byte {pos}: damaged record (bad length "
                                    f"or checksum) with a valid record at byte {later} after "
                                    "it: corruption in the middle of the log, not a torn "
                                    "write; refusing to start")
                kind = "torn"
            if kind == "torn":
                log.warning("%s: torn tail at byte %d (%d bytes) truncated",
                            self.wal_path, pos, len(buf) - pos)
                rec.truncated_bytes = len(buf) - pos
                with open(self.wal_path, "r+b") as f:
                    f.truncate(pos)
                    os.fsync(f.fileno())
                break
            head = HEADER.size if struct.unpack_from("<I", buf, pos)[0] & FLAG else \
                OLD_HEADER.size
            payload = _decoded(buf[pos + head:end])
            assert payload is not None
            try:
                self._replay(payload, base, entries, rec)
            except NodeError as err:
                raise NodeError(f"{self.wal_path}: byte {pos}: {err}") from None
            except (KeyError, TypeError, ValueError, AttributeError):
                raise NodeError(f"{self.wal_path}: byte {pos}: record with a valid checksum "
                                "but malformed fields; refusing to start") from None
            pos = end
        rec.entries = entries
        self._fd = os.open(self.wal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.fsync(self._fd)      # what we read may be dirty pages of a write never fsynced
        return rec

    @staticmethod
    def _replay(payload: dict, base: int, entries: list[Entry], rec: Recovered) -> None:
        def index(v: object) -> int:
            if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 2 ** 63:
                raise ValueError
            return v

        if payload.get("k") == "hs":
            vote = payload["vote"]
            if vote is not None:
                index(vote)
            rec.term, rec.voted_for = index(payload["term"]), vote
        elif payload.get("k") in ("e", "es"):
            i = index(payload["i"])
            if payload["k"] == "e":
                batch = [Entry(index(payload["t"]), payload["d"])]
            else:
                batch = [Entry(index(t), d) for t, d in zip(payload["t"], payload["d"],
                                                            strict=True)]
            if not all(isinstance(e.data, dict) for e in batch) or i < 1:
                raise ValueError
            if i + len(batch) - 1 <= base:
                return
            if i > base + len(entries) + 1:
                raise NodeError(f"entry {i} leaves a gap after {base + len(entries)} "
                                "(corrupt log)")
            if i <= base:
                batch, i = batch[base + 1 - i:], base + 1
            del entries[i - base - 1:]
            entries.extend(batch)

    def _load_snapshot(self) -> Snapshot:
        with open(self.snap_path, "rb") as f:
            buf = f.read()
        if len(buf) < OLD_HEADER.size:
            raise NodeError(f"{self.snap_path}: truncated snapshot")
        length, crc = OLD_HEADER.unpack_from(buf, 0)
        body = buf[OLD_HEADER.size:OLD_HEADER.size + length]
        if len(body) != length or zlib.crc32(body) != crc:
            raise NodeError(f"{self.snap_path}: snapshot checksum mismatch (corrupt)")
        try:
            meta_len = int.from_bytes(body[:4], "little")
            meta = json.loads(body[4:4 + meta_len])
            return Snapshot(int(meta["index"]), int(meta["term"]),
                            {int(k): str(v) for k, v in meta["members"].items()},
                            body[4 + meta_len:])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise NodeError(f"{self.snap_path}: malformed snapshot metadata") from None

    # ------------------------------------------------------------------ writing
    def append(self, first_index: int, entries: list[Entry]) -> None:
        """Queue entries starting at ``first_index`` (implicitly truncating from there)."""
        self._queued.append(_entries_record(first_index, entries))

    def save_hard_state(self, term: int, voted_for: int | None) -> None:
        self._queued.append(_record({"k": "hs", "term": term, "vote": voted_for}))

    def _check_hook(self, path: str) -> None:
        if self.fail_writes:
            raise OSError(errno.EIO, "injected disk failure (ctl disk-fail)", path)

    def sync(self) -> None:
        """Write what was queued and fsync it (Figure 2: persist before responding to RPCs).
        Raises ``DiskFailure``; afterwards the file may end in a partial record."""
        if not self._queued or self._fd is None:
            return
        data = b"".join(self._queued)
        self._queued.clear()
        try:
            self._check_hook(self.wal_path)
            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
            os.fsync(self._fd)
        except OSError as err:
            raise DiskFailure(f"{self.wal_path}: write/fsync failed: {err.strerror}") from err

    def save_snapshot(self, snap: Snapshot, first_index: int, entries: list[Entry], term: int,
                      voted_for: int | None) -> None:
        """Persist ``snap`` and rewrite the WAL to hold only what follows it (atomic renames)."""
        meta = json.dumps({"index": snap.index, "term": snap.term,
                           "members": {str(k): v for k, v in snap.members.items()}}).encode()
        body = len(meta).to_bytes(4, "little") + meta + snap.data
        self._queued.clear()                  # the rewritten WAL holds everything
        try:
            self._check_hook(self.snap_path)
            tmp = self.snap_path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(OLD_HEADER.pack(len(body), zlib.crc32(body)) + body)
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
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            os.replace(tmp, self.wal_path)
            _fsync_dir(self.dir)
            self._fd = os.open(self.wal_path, os.O_WRONLY | os.O_APPEND)
        except OSError as err:
            raise DiskFailure(f"{err.filename or self.dir}: writing the snapshot failed: "
                              f"{err.strerror}") from err

    def close(self) -> None:
        """Sync and close; after a ``DiskFailure`` use ``abandon`` instead."""
        if self._fd is not None:
            self.sync()
            os.close(self._fd)
            self._fd = None

    def abandon(self) -> None:
        """Close without writing anything more (the node is stopping after a failure)."""
        self._queued.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
