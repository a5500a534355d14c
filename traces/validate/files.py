"""Opening trace files: plain or gzip (recognised by its magic bytes, not by the name)."""

from __future__ import annotations

import gzip
from typing import IO

from raftspec.protocol.errors import RaftspecError


def open_text(path: str) -> IO[str]:
    """The file as UTF-8 text, gunzipped when it starts with gzip's magic bytes."""
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
    except FileNotFoundError:
        raise RaftspecError("no such trace file", path=path) from None
    except OSError as err:
        raise RaftspecError(f"cannot read trace file: {err.strerror}", path=path) from None
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")
