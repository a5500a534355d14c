"""Datagram encoding: versioned header, optional HMAC, JSON body, strict decode.

Layout: ``b"RS"`` + version (1 byte) + flags (1 byte; bit 0 = HMAC present) + [32-byte
HMAC-SHA256 over header and body] + a JSON object. Anything that does not match — short,
oversized, wrong magic or version, bad or missing MAC, bad JSON, a field of the wrong type — raises
``BadDatagram`` with a reason; the transport counts it by reason and drops it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from node.messages import RAFT_TYPES, Entry, Message

MAGIC = b"RS"
VERSION = 1
MAX_DATAGRAM = 65_000
MAC_LEN = 32
CLIENT_KINDS = ("req", "resp", "status", "status_resp", "ctl", "ctl_resp", "conf")


class BadDatagram(Exception):
    """A datagram that must be dropped; ``str(err)`` is the counter name."""


# message field -> (wire key, type)
_FIELDS: dict[str, tuple[str, type]] = {
    "last_log_index": ("lli", int), "last_log_term": ("llt", int), "granted": ("g", bool),
    "prev_index": ("pi", int), "prev_term": ("pt", int), "commit": ("c", int),
    "success": ("ok", bool), "match_index": ("mi", int), "conflict_index": ("ci", int),
    "conflict_term": ("ct", int), "snap_index": ("si", int), "snap_term": ("st", int),
    "offset": ("off", int), "done": ("dn", bool), "msg_id": ("mid", str),
}
_DEFAULTS = {name: Message.__dataclass_fields__[name].default for name in _FIELDS}


def encode(body: dict[str, Any], secret: bytes | None) -> bytes:
    payload = json.dumps(body, separators=(",", ":")).encode()
    if secret is None:
        return MAGIC + bytes((VERSION, 0)) + payload
    header = MAGIC + bytes((VERSION, 1))
    mac = hmac.new(secret, header + payload, hashlib.sha256).digest()
    return header + mac + payload


def decode(data: bytes, secret: bytes | None) -> dict[str, Any]:
    """Check header, MAC and JSON; return the body object (fields not yet type-checked)."""
    if len(data) > MAX_DATAGRAM:
        raise BadDatagram("oversized")
    if len(data) < 5:
        raise BadDatagram("truncated")
    if data[:2] != MAGIC:
        raise BadDatagram("bad_magic")
    if data[2] != VERSION:
        raise BadDatagram("bad_version")
    flags = data[3]
    if flags & 1:
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
        payload = data[4:]
    try:
        body = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise BadDatagram("bad_json") from None
    if not isinstance(body, dict) or not isinstance(body.get("k"), str):
        raise BadDatagram("bad_fields")
    return body


def _is(value: Any, typ: type) -> bool:
    if typ is int:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return isinstance(value, typ)


def message_to_body(m: Message) -> dict[str, Any]:
    body: dict[str, Any] = {"k": m.type, "s": m.src, "d": m.dst, "t": m.term}
    for name, (key, _typ) in _FIELDS.items():
        v = getattr(m, name)
        if v != _DEFAULTS[name]:
            body[key] = v
    if m.entries:
        body["e"] = [[e.term, e.data] for e in m.entries]
    if m.members:
        body["mem"] = {str(k): v for k, v in m.members.items()}
    if m.chunk:
        body["ch"] = base64.b64encode(m.chunk).decode()
    return body


def body_to_message(body: dict[str, Any]) -> Message:
    """Build a ``Message`` from a decoded body, rejecting any field of the wrong type."""
    if body["k"] not in RAFT_TYPES:
        raise BadDatagram("bad_type")
    s, d, t = body.get("s"), body.get("d"), body.get("t")
    if not (_is(s, int) and _is(d, int) and _is(t, int)):
        raise BadDatagram("bad_fields")
    m = Message(body["k"], s, d, t)
    for name, (key, typ) in _FIELDS.items():
        if key in body:
            v = body[key]
            if not _is(v, typ):
                raise BadDatagram("bad_fields")
            setattr(m, name, v)
    if "e" in body:
        es = body["e"]
        if not isinstance(es, list):
            raise BadDatagram("bad_fields")
        out = []
        for e in es:
            if not (isinstance(e, list) and len(e) == 2 and _is(e[0], int)
                    and isinstance(e[1], dict) and isinstance(e[1].get("op"), str)):
                raise BadDatagram("bad_fields")
            out.append(Entry(e[0], e[1]))
        m.entries = out
    if "mem" in body:
        mem = body["mem"]
        if not isinstance(mem, dict) or not all(k.isdigit() and isinstance(v, str)
                                                for k, v in mem.items()):
            raise BadDatagram("bad_fields")
        m.members = {int(k): v for k, v in mem.items()}
    if "ch" in body:
        try:
            m.chunk = base64.b64decode(body["ch"], validate=True)
        except (ValueError, TypeError):
            raise BadDatagram("bad_fields") from None
    return m


def check_config_entry(data: dict[str, Any]) -> bool:
    """A config command must name members as {"<id>": "host:port"}."""
    mem = data.get("members")
    return isinstance(mem, dict) and all(isinstance(k, str) and k.isdigit() and
                                         isinstance(v, str) for k, v in mem.items())
