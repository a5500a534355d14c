"""Loading edits (variants, mutants) by name, dotted module name or file path.

An edit is a module with a function ``edit(protocol) -> Protocol``. A model names one as
``variant: figure2`` (shipped, looked up in a package), ``variant: mypkg.prevote`` (a dotted
module on the import path) or ``variant: my_prevote.py`` (a file, relative to the model file).
Every way a user's file can be wrong (missing, syntax error, import error, no ``edit``, an
``edit`` that does not return a protocol) is a ``RaftspecError`` naming the file; so is an
exception raised later by the user's code the edit added (an action, an ``enumerate=``
function, an invariant, step or reachability property), naming the row or property too.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from raftspec.protocol.errors import RaftspecError
from raftspec.protocol.table import Protocol


def find_edit(spec: str, *, package: str, base_dir: Path | None = None) -> ModuleType:
    """The module of an edit: ``spec`` is a shipped name (a module of ``package``), a path to
    a ``.py`` file (relative to ``base_dir``) or a dotted module name."""
    if spec.endswith(".py") or "/" in spec or "\\" in spec:
        path = Path(spec)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return _load_file(path)
    if spec.isidentifier():
        try:
            return importlib.import_module(f"{package}.{spec}")
        except ModuleNotFoundError as err:
            if err.name != f"{package}.{spec}":
                raise
    return _import_dotted(spec)


def apply_edit(protocol: Protocol, module: ModuleType, name: str) -> Protocol:
    """``module.edit(protocol)``, checked: it must exist and return a protocol."""
    where = getattr(module, "__raftspec_path__", None) or getattr(module, "__file__", None) \
        or module.__name__
    edit = getattr(module, "edit", None)
    if not callable(edit):
        raise RaftspecError(f"variant {name!r} has no function edit(protocol) -> Protocol",
                            path=where)
    try:
        result = edit(protocol)
    except RaftspecError as err:
        if err.path is not None:
            raise
        raise RaftspecError(str(err), path=where) from None
    except Exception as err:  # noqa: BLE001 (a user's code: report where it failed)
        raise RaftspecError(f"variant {name!r} failed in edit(): {_where_failed(err, where)}",
                            path=where) from None
    if not isinstance(result, Protocol):
        raise RaftspecError(f"variant {name!r}: edit() returned {type(result).__name__}, "
                            "not a Protocol", path=where)
    if name not in result.edits:
        result = result._edited(edit=name)
    return _guard_foreign_rows(result, where)


def _foreign(fn: Any) -> bool:
    """A user's function, not yet guarded (raftspec's own are trusted: their bugs are ours)."""
    module = getattr(fn, "__module__", "") or ""
    return not (module.startswith("raftspec.") or getattr(fn, "_guarded", False))


def _guard_foreign_rows(protocol: Protocol, where: str) -> Protocol:
    """Rows whose action or ``enumerate`` is not raftspec's own, and properties that are not,
    are wrapped so that an exception (or an action's returned value that is not a state)
    becomes a ``RaftspecError`` naming the row or property and the file, not a traceback."""
    rows = []
    for row in protocol.rows:
        changes = {}
        if _foreign(row.apply):
            changes["apply"] = _guarded(row.apply, row.name, protocol, where)
        if _foreign(row.enumerate):
            changes["enumerate"] = _guarded_enumerate(row.enumerate, row.name, where)
        rows.append(attrs.evolve(row, **changes) if changes else row)
    properties = {
        table: {name: (_guarded_property(fn, kind, name, where) if _foreign(fn) else fn)
                for name, fn in getattr(protocol, table).items()}
        for table, kind in (("invariants", "invariant"), ("step_properties", "step property"),
                            ("reachable", "reachability property"))}
    return attrs.evolve(protocol, rows=tuple(rows), **properties)


def _guarded_enumerate(enumerate_args: Any, name: str, where: str) -> Any:
    """The row's ``enumerate(state, config)``, its tuples materialized inside the guard (a
    generator raises while it is iterated, not when it is called)."""
    def guarded(state: Any, config: Any) -> tuple:
        try:
            return tuple(enumerate_args(state, config))
        except RaftspecError:
            raise
        except Exception as err:  # noqa: BLE001 (a user's enumerate: report where it failed)
            raise RaftspecError(f"enumerate of action {name} raised "
                                f"{_where_failed(err, where)}", path=where) from None

    guarded._guarded = True  # type: ignore[attr-defined]
    guarded.__wrapped__ = enumerate_args  # type: ignore[attr-defined]
    return guarded


def _guarded_property(prop: Any, kind: str, name: str, where: str) -> Any:
    """An invariant ``(state, config)``, step property ``(state, next, config)`` or
    reachability property, any exception reported as the property's."""
    def guarded(*args: Any) -> Any:
        try:
            return prop(*args)
        except RaftspecError:
            raise
        except Exception as err:  # noqa: BLE001 (a user's property: report where it failed)
            raise RaftspecError(f"{kind} {name} raised {_where_failed(err, where)}",
                                path=where) from None

    guarded._guarded = True  # type: ignore[attr-defined]
    guarded.__wrapped__ = prop  # type: ignore[attr-defined]
    return guarded


def _guarded(apply: Any, name: str, protocol: Protocol, where: str) -> Any:
    state_class = protocol.State

    def guarded(state: Any, *args: Any) -> Any:
        try:
            nxt = apply(state, *args)
        except RaftspecError:
            raise
        except Exception as err:  # noqa: BLE001 (a user's action: report where it failed)
            raise RaftspecError(f"action {name} raised {_where_failed(err, where)}",
                                path=where) from None
        if nxt is not None and not isinstance(nxt, state_class):
            raise RaftspecError(f"action {name} returned {type(nxt).__name__}, not a state "
                                "of this protocol (or None)", path=where)
        return nxt

    guarded._guarded = True  # type: ignore[attr-defined]
    guarded.__wrapped__ = apply  # type: ignore[attr-defined]
    return guarded


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise RaftspecError("no such variant file", path=str(path))
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    module_name = f"raftspec_user_variant_{resolved.stem}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise RaftspecError("cannot load this file as a Python module", path=str(path))
    module = importlib.util.module_from_spec(spec)
    module.__raftspec_path__ = str(path)  # type: ignore[attr-defined]
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        del sys.modules[module_name]
        raise RaftspecError(f"syntax error: {err.msg}", path=str(path),
                            line=err.lineno) from None
    except Exception as err:  # noqa: BLE001 (a user's code: report, never a traceback)
        del sys.modules[module_name]
        raise RaftspecError(f"cannot import the variant: {_where_failed(err, str(resolved))}",
                            path=str(path)) from None
    return module


def _import_dotted(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as err:
        raise RaftspecError(f"no variant or module named {name!r} ({err})") from None
    except Exception as err:  # noqa: BLE001
        raise RaftspecError(f"cannot import variant module {name!r}: "
                            f"{_where_failed(err)}") from None


def _where_failed(err: BaseException, prefer: str | None = None) -> str:
    """``ExcType: message (file:line)``, for one-line error reports: the innermost frame in the
    file ``prefer`` (the user's), else the innermost frame."""
    frames = traceback.extract_tb(err.__traceback__)
    if prefer is not None:
        theirs = [f for f in frames if Path(f.filename).resolve() == Path(prefer).resolve()]
        frames = theirs or frames
    at = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(err).__name__}: {err}{at}"
