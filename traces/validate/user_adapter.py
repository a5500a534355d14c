"""``raftspec validate --adapter FILE.py``: an adapter written in the user's own file.

The file defines ``make_adapter()`` returning an object with the five methods of
``traces.validate.adapter.Adapter`` (docs/validate.md, "Writing an adapter"). Every mistake in
it (missing file, syntax or import error, no ``make_adapter``, a missing method, an exception
inside a method) is one ``RaftspecError`` naming the file, never a traceback.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from raftspec.protocol.errors import RaftspecError
from raftspec.protocol.load import _where_failed

METHODS = ("read", "initial", "attempts", "silent", "describe")


def load_adapter(path: Path) -> Any:
    """The adapter made by ``make_adapter()`` in ``path``, its methods guarded."""
    if not path.is_file():
        raise RaftspecError("no such adapter file", path=str(path))
    resolved = path.resolve()
    name = f"raftspec_user_adapter_{resolved.stem}_" \
           f"{hashlib.sha1(str(resolved).encode()).hexdigest()[:12]}"
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise RaftspecError("cannot load this file as a Python module", path=str(path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        raise RaftspecError(f"syntax error: {err.msg}", path=str(path), line=err.lineno) \
            from None
    except Exception as err:  # noqa: BLE001 (a user's code: report, never a traceback)
        raise RaftspecError(f"cannot import the adapter: {_where_failed(err, str(resolved))}",
                            path=str(path)) from None
    make = getattr(module, "make_adapter", None)
    if not callable(make):
        raise RaftspecError("the adapter file defines no function make_adapter()",
                            path=str(path))
    try:
        adapter = make()
    except Exception as err:  # noqa: BLE001
        raise RaftspecError(f"make_adapter() raised {_where_failed(err, str(resolved))}",
                            path=str(path)) from None
    missing = [m for m in METHODS if not callable(getattr(adapter, m, None))]
    if missing:
        raise RaftspecError(f"the adapter from make_adapter() lacks the method(s) "
                            f"{', '.join(missing)} (docs/validate.md)", path=str(path))
    return GuardedAdapter(adapter, str(path), str(resolved))


class GuardedAdapter:
    """The user's adapter, with each method's exception turned into a ``RaftspecError``
    naming the adapter file and the method."""

    def __init__(self, inner: Any, path: str, resolved: str) -> None:
        self._inner, self._path, self._resolved = inner, path, resolved
        self.name = getattr(inner, "name", Path(path).stem)

    def _call(self, method: str, *args: Any) -> Any:
        try:
            out = getattr(self._inner, method)(*args)
            if method in ("initial", "attempts", "silent"):
                out = list(out)
            return out
        except RaftspecError:
            raise
        except Exception as err:  # noqa: BLE001 (a user's code: report where it failed)
            raise RaftspecError(f"adapter method {method}() raised "
                                f"{_where_failed(err, self._resolved)}", path=self._path) \
                from None

    def read(self, path: str) -> Any:
        return self._call("read", path)

    def initial(self, events: Any) -> Any:
        return self._call("initial", events)

    def attempts(self, event: Any, candidate: Any) -> Any:
        return self._call("attempts", event, candidate)

    def silent(self, candidate: Any) -> Any:
        return self._call("silent", candidate)

    def describe(self, candidate: Any) -> Any:
        return self._call("describe", candidate)
