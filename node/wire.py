"""Datagram encoding: versioned header, integrity check, fragments, strict decode.

Layout: ``b"RS"`` + version (1 byte, 3) + flags (1 byte; bit 0 = HMAC, bit 1 = fragment) + either
a 32-byte HMAC-SHA256 (with ``--secret``) or a CRC32 (4 bytes, little-endian) over the header and
everything after the check + the payload. Every datagram carries one of the two: UDP's own
16-bit checksum is optional and too weak to stop a flipped bit from being applied as a command.
The payload is a MessagePack map, or for a fragment ``[message id u64][index u16][count u16]``
and a slice of the map's bytes: a message larger than one datagram (a 1 MiB value in a request,
a reply or an AppendEntries) is cut into fragments of ``FRAGMENT_BYTES`` and put back together
by a ``Reassembler`` (bounded memory, incomplete messages expire). Anything that does not match
— short, oversized, wrong magic or version, bad CRC or MAC, an undecodable body, a field of the
wrong type or out of range — raises ``BadDatagram`` with a reason; the receiver counts it by
reason and drops it. MessagePack rather than JSON: encoding an AppendEntries batch is ~4x
cheaper, and snapshot chunks travel as raw bytes instead of base64.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
import time
import zlib
from typing import Any

import msgpack

from raftspec.node.errors import NodeError
from raftspec.node.messages import RAFT_TYPES, Entry, Message
from raftspec.node.transport import parse_addr

MAGIC = b"RS"
VERSION = 3
MAX_DATAGRAM = 65_000
MAC_LEN = 32
CRC_LEN = 4
FRAGMENT_BYTES = 60_000               # payload bytes per fragment
MAX_MESSAGE = 8 * 1024 * 1024         # largest reassembled message
MAX_FRAGMENTS = -(-MAX_MESSAGE // FRAGMENT_BYTES)
MAX_INCOMPLETE = 256                  # messages being reassembled at once, per receiver
MAX_BATCH_BYTES = 60_000              # client requests / replies packed into one datagram
CLIENT_KINDS = ("req", "resp", "status", "status_resp", "ctl", "ctl_resp", "conf")
F_MAC, F_FRAGMENT = 1, 2
_FRAG = struct.Struct("<QHH")

# ranges of values from the wire: terms and indexes stay far below msgpack's 2**64 (a term + 1
# must still encode), node ids are what --id accepts, lists and maps are bounded
MAX_TERM = 2 ** 53
MAX_INDEX = 2 ** 53
MAX_ID = 2 ** 31 - 1
MAX_ENTRIES = 100_000
MAX_MEMBERS = 1_000
MAX_STR = 256                         # ids, keys, message ids, addresses
KV_OPS = ("put", "append", "get")


class BadDatagram(Exception):
    """A datagram that must be dropped; ``str(err)`` is the counter name."""


# message field -> (wire key, type, upper bound)
_FIELDS: dict[str, tuple[str, type, int]] = {
    "last_log_index": ("lli", int, MAX_INDEX), "last_log_term": ("llt", int, MAX_TERM),
    "granted": ("g", bool, 1), "prev_index": ("pi", int, MAX_INDEX),
    "prev_term": ("pt", int, MAX_TERM), "commit": ("c", int, MAX_INDEX),
    "success": ("ok", bool, 1), "match_index": ("mi", int, MAX_INDEX),
    "conflict_index": ("ci", int, MAX_INDEX), "conflict_term": ("ct", int, MAX_TERM),
    "snap_index": ("si", int, MAX_INDEX), "snap_term": ("st", int, MAX_TERM),
    "offset": ("off", int, MAX_MESSAGE * 1024), "done": ("dn", bool, 1),
    "msg_id": ("mid", str, MAX_STR),
}
_DEFAULTS = {name: Message.__dataclass_fields__[name].default for name in _FIELDS}


_packer = msgpack.Packer()
_pack = _packer.pack
_BATCH_PREFIX = _packer.pack_map_header(2) + _pack("k") + _pack("batch") + _pack("m")
_frag_ids = iter(range(int.from_bytes(os.urandom(6), "little") << 16, 2 ** 64))


def encode(body: dict[str, Any], secret: bytes | None) -> bytes:
    """One small body (status, control) as one datagram; raises BadDatagram if it needs more."""
    frames = _frames(_pack(body), secret)
    if len(frames) != 1:
        raise BadDatagram("oversized")
    return frames[0]


def pack_entries(entries: list[Entry]) -> bytes:
    """The wire form of an AppendEntries batch, packed once and shared by every follower."""
    return _pack([[e.term, e.data] for e in entries])


def encode_message(m: Message, secret: bytes | None,
                   packed_entries: bytes | None = None) -> list[bytes]:
    """Encode a Raft message as its datagrams (one, or fragments); ``packed_entries`` (from
    ``pack_entries(m.entries)``) is spliced in as the value of ``"e"`` instead of packing the
    entries again."""
    if packed_entries is None or not m.entries:
        return _frames(_pack(message_to_body(m)), secret)
    body = message_to_body(m, with_entries=False)
    parts = [_packer.pack_map_header(len(body) + 1)]
    for k, v in body.items():
        parts.append(_pack(k))
        parts.append(_pack(v))
    parts.append(_pack("e"))
    parts.append(packed_entries)
    return _frames(b"".join(parts), secret)


def encode_batches(bodies: list[dict[str, Any]], secret: bytes | None,
                   limit: int = MAX_BATCH_BYTES) -> list[bytes]:
    """Client requests or replies to one address as few datagrams as fit: ``{"k": "batch",
    "m": [...]}`` of at most ``limit`` payload bytes (a lone body is sent as itself, in
    fragments if it is larger than a datagram)."""
    packed = [_pack(b) for b in bodies]
    out: list[bytes] = []
    start, size = 0, 0
    for k, p in enumerate(packed):
        if k > start and size + len(p) > limit:
            out.extend(_batch(packed[start:k], secret))
            start, size = k, 0
        size += len(p)
    if start < len(packed):
        out.extend(_batch(packed[start:], secret))
    return out


def _batch(parts: list[bytes], secret: bytes | None) -> list[bytes]:
    if len(parts) == 1:
        return _frames(parts[0], secret)
    return _frames(_BATCH_PREFIX + _packer.pack_array_header(len(parts)) + b"".join(parts),
                   secret)


def _frames(payload: bytes, secret: bytes | None) -> list[bytes]:
    if len(payload) <= FRAGMENT_BYTES:
        return [_frame(payload, secret, 0)]
    if len(payload) > MAX_MESSAGE:
        raise BadDatagram("message_too_large")
    mid = next(_frag_ids)
    count = -(-len(payload) // FRAGMENT_BYTES)
    return [_frame(_FRAG.pack(mid, k, count) + payload[k * FRAGMENT_BYTES:
                                                       (k + 1) * FRAGMENT_BYTES],
                   secret, F_FRAGMENT) for k in range(count)]


def _frame(payload: bytes, secret: bytes | None, flags: int) -> bytes:
    if secret is None:
        header = MAGIC + bytes((VERSION, flags))
        return header + struct.pack("<I", zlib.crc32(payload, zlib.crc32(header))) + payload
    header = MAGIC + bytes((VERSION, flags | F_MAC))
    mac = hmac.new(secret, header + payload, hashlib.sha256).digest()
    return header + mac + payload


def _open(data: bytes, secret: bytes | None) -> tuple[int, bytes]:
    """Check header and integrity; (flags, payload)."""
    if len(data) > MAX_DATAGRAM:
        raise BadDatagram("oversized")
    if len(data) < 4 + CRC_LEN:
        raise BadDatagram("truncated")
    if data[:2] != MAGIC:
        raise BadDatagram("bad_magic")
    if data[2] != VERSION:
        raise BadDatagram("bad_version")
    flags = data[3]
    if flags & ~(F_MAC | F_FRAGMENT):
        raise BadDatagram("bad_flags")
    if flags & F_MAC:
        if secret is None:
            raise BadDatagram("unexpected_mac")
        if len(data) < 4 + MAC_LEN:
            raise BadDatagram("truncated")
        mac, payload = data[4:4 + MAC_LEN], data[4 + MAC_LEN:]
        if not hmac.compare_digest(mac, hmac.new(secret, data[:4] + payload,
                                                 hashlib.sha256).digest()):
            raise BadDatagram("bad_mac")
    else:
        if secret is not None:
            raise BadDatagram("missing_mac")
        payload = data[4 + CRC_LEN:]
        if struct.unpack_from("<I", data, 4)[0] != zlib.crc32(payload, zlib.crc32(data[:4])):
            raise BadDatagram("bad_crc")
    return flags, payload


def _body(payload: bytes) -> dict[str, Any]:
    try:
        body = msgpack.unpackb(payload)
    except Exception:                     # msgpack raises several types for garbage
        raise BadDatagram("bad_body") from None
    if not isinstance(body, dict) or not isinstance(body.get("k"), str):
        raise BadDatagram("bad_fields")
    return body


def decode(data: bytes, secret: bytes | None) -> dict[str, Any]:
    """Check header, integrity and MessagePack; return the body object (fields not yet
    type-checked). A fragment is ``BadDatagram("fragment")``: use a ``Reassembler``."""
    flags, payload = _open(data, secret)
    if flags & F_FRAGMENT:
        raise BadDatagram("fragment")
    return _body(payload)


class Reassembler:
    """Decodes datagrams, putting fragmented messages back together.

    At most ``max_bytes`` of incomplete messages, and at most ``MAX_INCOMPLETE`` of them, are
    held (oldest dropped first), each for at most ``ttl`` seconds: a lost fragment costs its
    message, never unbounded memory.
    """

    def __init__(self, max_bytes: int = 4 * MAX_MESSAGE, ttl: float = 5.0) -> None:
        self.max_bytes = max_bytes
        self.ttl = ttl
        self._parts: dict[tuple[Any, int], tuple[float, int, dict[int, bytes]]] = {}
        self._held = 0

    def feed(self, data: bytes, source: Any, secret: bytes | None) -> dict[str, Any] | None:
        """The body of a whole message, or None while fragments of it are missing."""
        flags, payload = _open(data, secret)
        if not flags & F_FRAGMENT:
            return _body(payload)
        if len(payload) <= _FRAG.size:
            raise BadDatagram("truncated")
        mid, k, count = _FRAG.unpack_from(payload)
        chunk = payload[_FRAG.size:]
        if not (1 < count <= MAX_FRAGMENTS and k < count and len(chunk) <= FRAGMENT_BYTES):
            raise BadDatagram("bad_fragment")
        now = time.monotonic()
        key = (source, mid)
        entry = self._parts.get(key)
        if entry is None:
            self._expire(now)
            entry = self._parts[key] = (now, count, {})
        t0, n, got = entry
        if n != count:
            raise BadDatagram("bad_fragment")
        if k not in got:
            got[k] = chunk
            self._held += len(chunk)
        if len(got) < count:
            while (self._held > self.max_bytes or len(self._parts) > MAX_INCOMPLETE) \
                    and len(self._parts) > 1:
                self._drop(next(iter(self._parts)))
            return None
        self._drop(key)
        return _body(b"".join(got[i] for i in range(count)))

    def _drop(self, key: tuple[Any, int]) -> None:
        _, _, got = self._parts.pop(key)
        self._held -= sum(map(len, got.values()))

    def _expire(self, now: float) -> None:
        for key in [k for k, (t0, _, _) in self._parts.items() if now - t0 > self.ttl]:
            self._drop(key)


def _is(value: Any, typ: type, top: int = MAX_INDEX) -> bool:
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top
    if typ is str:
        return isinstance(value, str) and len(value) <= top
    return isinstance(value, typ)


def message_to_body(m: Message, with_entries: bool = True) -> dict[str, Any]:
    body: dict[str, Any] = {"k": m.type, "s": m.src, "d": m.dst, "t": m.term}
    for name, (key, _typ, _top) in _FIELDS.items():
        v = getattr(m, name)
        if v != _DEFAULTS[name]:
            body[key] = v
    if m.entries and with_entries:
        body["e"] = [[e.term, e.data] for e in m.entries]
    if m.members:
        body["mem"] = {str(k): v for k, v in m.members.items()}
    if m.chunk:
        body["ch"] = m.chunk
    return body


def members_error(mem: Any) -> str | None:
    """Why ``mem`` is not members as {"<id>": "host:port"} (ids 1..MAX_ID, addresses of at most
    MAX_STR characters that parse), or None. A leader checks a new configuration with this
    before appending it: an entry its followers drop would never commit, nor anything after it."""
    if not isinstance(mem, dict) or not 0 < len(mem) <= MAX_MEMBERS:
        return f"a configuration has 1..{MAX_MEMBERS} members"
    for k, v in mem.items():
        if not (isinstance(k, str) and k.isascii() and k.isdigit() and len(k) <= 10
                and 0 < int(k) <= MAX_ID):
            return f"bad node id {k!r}: 1..{MAX_ID}"
        if not isinstance(v, str) or len(v) > MAX_STR:
            return (f"bad address for node {k}: expected HOST:PORT of at most {MAX_STR} "
                    "characters")
        try:
            parse_addr(v)
        except NodeError as err:
            return str(err)
    return None


def check_members(mem: Any) -> bool:
    """Members as {"<id>": "host:port"}: ids 1..MAX_ID, addresses that parse."""
    return members_error(mem) is None


def check_command(data: Any) -> bool:
    """A log entry's command, as the kv and the membership code will read it."""
    if not isinstance(data, dict):
        return False
    op = data.get("op")
    if op == "noop":
        return True
    if op == "config":
        return check_members(data.get("members"))
    if op in KV_OPS:
        value, cid, seq = data.get("value"), data.get("cid"), data.get("seq", 0)
        return (_is(data.get("key"), str, MAX_STR) and (value is None or isinstance(value, str))
                and (cid is None or _is(cid, str, MAX_STR)) and _is(seq, int, MAX_INDEX))
    return False


def body_to_message(body: dict[str, Any]) -> Message:
    """Build a ``Message`` from a decoded body, rejecting any field of the wrong type or out of
    range (an unchecked term of 2**64 - 1 would overflow on the next ``term + 1``)."""
    if body["k"] not in RAFT_TYPES:
        raise BadDatagram("bad_type")
    s, d, t = body.get("s"), body.get("d"), body.get("t")
    if not (_is(s, int, MAX_ID) and _is(d, int, MAX_ID) and s > 0 and d > 0
            and _is(t, int, MAX_TERM)):
        raise BadDatagram("bad_fields")
    m = Message(body["k"], s, d, t)
    for name, (key, typ, top) in _FIELDS.items():
        if key in body:
            v = body[key]
            if not _is(v, typ, top):
                raise BadDatagram("bad_fields")
            setattr(m, name, v)
    if max(m.last_log_term, m.prev_term, m.snap_term) > t:
        raise BadDatagram("bad_fields")               # no entry is newer than its sender's term
    if "e" in body:
        es = body["e"]
        if not isinstance(es, list) or len(es) > MAX_ENTRIES:
            raise BadDatagram("bad_fields")
        out = []
        for e in es:
            if not (isinstance(e, list) and len(e) == 2 and _is(e[0], int, t)
                    and check_command(e[1])):
                raise BadDatagram("bad_fields")
            out.append(Entry(e[0], e[1]))
        m.entries = out
    if "mem" in body:
        if not check_members(body["mem"]):
            raise BadDatagram("bad_fields")
        m.members = {int(k): v for k, v in body["mem"].items()}
    if "ch" in body:
        if not isinstance(body["ch"], bytes):
            raise BadDatagram("bad_fields")
        m.chunk = body["ch"]
    return m
