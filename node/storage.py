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
from raftspec.node.wire import check_command

log = logging.getLogger("raftspec.node.storage")

HEADER = struct.Struct("<III")
OLD_HEADER = struct.Struct("<II")
FLAG = 0x8000_0000                   # set in the length field of records with a header checksum
MAX_RECORD = 1 << 30


class DiskFailure(NodeError):
    """Writing or fsyncing the data dir failed: nothing queued since the last sync is durable."""


@dataclass(frozen=True, slots=True)
class Mark:
    """The durable high-water mark (file ``mark``): the node's log held ``index`` (whose entry
    has term ``log_term``) and its hard state was (``term``, ``vote``), all fsynced in the WAL
    before this was written. ``abstain`` > 0: the node lost acknowledged entries, was started
    with --accept-lost-entries, and must not vote or campaign until its log reaches it."""

    index: int = 0
    log_term: int = 0
    term: int = 0
    vote: int | None = None
    abstain: int = 0


@dataclass
class Recovered:
    term: int = 0
    voted_for: int | None = None
    snapshot: Snapshot | None = None
    entries: list[Entry] = field(default_factory=list)
    truncated_bytes: int = 0
    mark: Mark | None = None                 # None: no mark file (a new or older data dir)

    @property
    def last_index(self) -> int:
        return (self.snapshot.index if self.snapshot else 0) + len(self.entries)

    def term_at(self, index: int) -> int | None:
        """Term of the recovered entry at ``index``; None if compacted away or absent."""
        base = self.snapshot.index if self.snapshot else 0
        if index == base:
            return self.snapshot.term if self.snapshot else 0
        if base < index <= self.last_index:
            return self.entries[index - base - 1].term
        return None


# ---------------------------------------------------------------------- the high-water mark
MARK_SLOT = struct.Struct("<4sQQQQqQ")          # magic, seq, index, log_term, term, vote, abstain
MARK_MAGIC = b"RSHW"
MARK_SIZE = MARK_SLOT.size + 4                  # + crc32 of the slot


def _mark_slot(seq: int, m: Mark) -> bytes:
    body = MARK_SLOT.pack(MARK_MAGIC, seq, m.index, m.log_term, m.term,
                          -1 if m.vote is None else m.vote, m.abstain)
    return body + struct.pack("<I", zlib.crc32(body))


def _read_mark_slot(buf: bytes) -> tuple[int, Mark] | None:
    if len(buf) < MARK_SIZE:
        return None
    body = buf[:MARK_SLOT.size]
    if struct.unpack_from("<I", buf, MARK_SLOT.size)[0] != zlib.crc32(body):
        return None
    magic, seq, index, log_term, term, vote, abstain = MARK_SLOT.unpack(body)
    if magic != MARK_MAGIC or max(index, log_term, term, abstain, vote) >= 2 ** 63:
        return None
    return seq, Mark(index, log_term, term, None if vote < 0 else vote, abstain)


def read_mark(path: str) -> Mark | None:
    """The mark in file ``path`` (for tools and tests; the node reads it in ``load``)."""
    with open(path, "rb") as f:
        buf = f.read(2 * MARK_SIZE)
    slots = [s for s in (_read_mark_slot(buf[:MARK_SIZE]), _read_mark_slot(buf[MARK_SIZE:]))
             if s is not None]
    return max(slots, key=lambda s: s[0])[1] if slots else None


def lost_entries(rec: Recovered) -> str | None:
    """What the recovered WAL lacks of what the mark says was fsynced (and so may have been
    acknowledged): None if nothing. A torn tail never counts: it was never fsynced, and the
    mark is written only after the fsync of what it covers."""
    m = rec.mark
    if m is None:
        return None
    holds = (f"the WAL holds entries up to index {rec.last_index} (term "
             f"{rec.term_at(rec.last_index)}), current term {rec.term}")
    if rec.last_index < m.index:
        return (f"{holds}, but the mark says entries up to index {m.index} (term {m.log_term}) "
                "were persisted")
    t = rec.term_at(m.index)
    if t is not None and m.log_term and t != m.log_term:       # log_term 0: not known
        return (f"{holds}, but its entry {m.index} has term {t} where the mark says "
                f"{m.log_term} was persisted")
    if (m.term, m.vote is not None) > (rec.term, rec.voted_for is not None):
        return (f"{holds}, vote {rec.voted_for}, but the mark says term {m.term}, vote "
                f"{m.vote} was persisted")
    return None


class HighWater:
    """When to write the mark (the policy, kept apart from the file so it can be tested).

    Invariant: the mark never claims more than the WAL durably holds. Raising it is lazy
    (after the WAL's fsync: whenever the hard state changed, else once ``every`` entries or
    ``interval`` seconds), so a loss of the last few entries can go unnoticed; lowering it
    (a follower's log rewritten at or below the mark, a snapshot replacing the log) is done
    *before* the WAL write, or a crash in between would look like a loss."""

    def __init__(self, mark: Mark | None, every: int = 1000, interval: float = 0.1) -> None:
        self.mark = mark or Mark()
        self.every = every
        self.interval = interval
        self.written_at = float("-inf")

    def before_write(self, append_from: int, term_before: int | None,
                     snapshot: Snapshot | None) -> Mark | None:
        """The mark to write (and fsync) before persisting a rewrite from ``append_from``
        (``term_before``: the term of entry ``append_from - 1``) or a received snapshot."""
        m = self.mark
        if snapshot is not None and m.index >= snapshot.index:
            # log_term 0 (unknown): until the snapshot is written the WAL may hold another
            # term at that index (the snapshot replaces a log that disagrees with it)
            return self.reset(Mark(snapshot.index, 0, m.term, m.vote, m.abstain))
        if append_from and m.index >= append_from:
            return self.reset(Mark(append_from - 1, term_before or 0, m.term, m.vote, m.abstain))
        return None

    def after_sync(self, last: int, last_term: int, term: int, vote: int | None,
                   now: float, hard_state: bool = False) -> Mark | None:
        """The mark to write now that the WAL durably holds ``last`` and (term, vote)."""
        m = self.mark
        if not hard_state and last - m.index < self.every and \
                now - self.written_at < self.interval:
            return None                           # the common case: nothing built
        new = Mark(last, last_term, term, vote, m.abstain if last < m.abstain else 0)
        if new == m:
            return None
        self.written_at = now
        return self.reset(new)

    def reset(self, m: Mark) -> Mark:
        """Take ``m`` as the mark (the caller writes it)."""
        self.mark = m
        return m


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
        self.mark_path = os.path.join(data_dir, "mark")
        self._mark_fd: int | None = None
        self._mark_seq = 0

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
        rec.mark = self._load_mark()
        return rec

    def _load_mark(self) -> Mark | None:
        """Two slots written alternately (slot 0 first), so a torn write leaves the previous
        mark readable; the valid slot with the higher sequence number wins."""
        created = not os.path.exists(self.mark_path)
        self._mark_fd = os.open(self.mark_path, os.O_RDWR | os.O_CREAT, 0o644)
        if created:
            _fsync_dir(self.dir)
            return None
        buf = os.pread(self._mark_fd, 2 * MARK_SIZE, 0)
        if not buf:
            return None
        slots = [s for s in (_read_mark_slot(buf[:MARK_SIZE]), _read_mark_slot(buf[MARK_SIZE:]))
                 if s is not None]
        if not slots and len(buf) <= MARK_SIZE:
            return None                  # the very first write (at the first start) was torn
        if not slots:
            raise NodeError(f"{self.mark_path}: damaged (no valid slot): cannot tell whether "
                            "acknowledged entries were lost; refusing to start (remove the "
                            "file to start without this check)")
        seq, mark = max(slots, key=lambda s: s[0])
        self._mark_seq = seq
        return mark

    def write_mark(self, mark: Mark) -> None:
        """Write ``mark`` into the older slot and fsync (``DiskFailure`` if that fails)."""
        if self._mark_fd is None:
            return
        seq = self._mark_seq + 1
        try:
            self._check_hook(self.mark_path)
            data = _mark_slot(seq, mark)
            if os.pwrite(self._mark_fd, data, ((seq - 1) % 2) * MARK_SIZE) != len(data):
                raise OSError(errno.EIO, "short write", self.mark_path)
            os.fsync(self._mark_fd)
        except OSError as err:
            raise DiskFailure(f"{self.mark_path}: write/fsync failed: {err.strerror}") from err
        self._mark_seq = seq

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
            if not all(check_command(e.data) for e in batch) or i < 1:
                raise ValueError                  # the wire's check: the node applies only these
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
        except (KeyError, TypeError, ValueError, AttributeError, RecursionError):
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
        self._close_mark()

    def abandon(self) -> None:
        """Close without writing anything more (the node is stopping after a failure)."""
        self._queued.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._close_mark()

    def _close_mark(self) -> None:
        if self._mark_fd is not None:
            os.close(self._mark_fd)
            self._mark_fd = None
