"""The node package's one exception type for mistakes a user can make."""

from __future__ import annotations


class NodeError(Exception):
    """A user-caused error (bad flag, unreachable cluster, corrupt data dir).

    The CLI prints ``str(err)`` without a traceback and exits 2.
    """
