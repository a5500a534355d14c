"""The one exception type for mistakes a user can make (bad model file, bad trace, bad flag)."""

from __future__ import annotations


class RaftspecError(Exception):
    """A user-caused error: the CLI prints ``str(err)`` without a traceback and exits 2.

    The message names where the problem is (file, line, field) so it can be fixed without
    reading code.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.message = message
        self.path = path
        self.line = line
        self.field = field
        where = ""
        if path is not None:
            where = path if line is None else f"{path}:{line}"
            where += ": "
        if field is not None:
            where += f"{field}: "
        super().__init__(where + message)
