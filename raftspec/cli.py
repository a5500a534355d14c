"""``raftspec``: one entry point, one module per subcommand (see raftspec/commands/).

Exit codes shared by every subcommand (raftspec/commands/_contract.py): 0 ok, 1 a finding
(violation, not inductive, invalid trace, non-linearizable history), 2 usage, bad input or an
unsupported feature, 3 incomplete (a budget ran out or the run was interrupted), 4 an
internal error (a bug in raftspec: one line naming the exception, never a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import sys
import threading
from types import FrameType

from raftspec.commands._contract import INCOMPLETE, INTERNAL_ERROR, USAGE, PipeSafeStdout
from raftspec.node.errors import NodeError
from raftspec.protocol.errors import RaftspecError

# Each module defines register(subparsers) which adds its parser and sets a ``run`` default
# taking the parsed arguments and returning the exit code.
COMMANDS = (
    "raftspec.commands.check", "raftspec.commands.simulate", "raftspec.commands.matrix",
    "raftspec.commands.bmc", "raftspec.commands.induct",
    "raftspec.commands.lincheck",
    "raftspec.commands.validate",
    "raftspec.commands.cluster",
    "raftspec.commands.node",
    "raftspec.commands.kv",
    "raftspec.commands.status",
    "raftspec.commands.ctl",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or with just the module ``only`` (so that running one
    command never pays for importing the others: z3, asyncio, ...)."""
    parser = argparse.ArgumentParser(
        prog="raftspec",
        description="An executable reference of the Raft consensus protocol: model checking, "
        "a real cluster, and trace validation on one semantics.",
        epilog="Exit status, every command: 0 ok, 1 a finding (violation, not inductive, "
        "invalid, not linearizable), 2 usage or bad input, 3 incomplete (budget ran out or "
        "interrupted), 4 internal error (a bug in raftspec).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS if only is None else (only,):
        importlib.import_module(name).register(subparsers)
    return parser


def _command_module(argv: list[str]) -> str | None:
    """The module of the subcommand named first on the command line, if any."""
    first = next((arg for arg in argv if not arg.startswith("-")), None)
    return next((name for name in COMMANDS if name.rsplit(".", 1)[1] == first), None)


VERDICT_COMMANDS = ("check", "simulate", "matrix", "bmc", "induct", "lincheck", "validate")
"""Commands whose SIGTERM (a CI job's timeout) is handled as Ctrl-C: partial results, exit 3.
The cluster commands keep their own signal handling."""


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)
"""Ctrl-C, a CI job's timeout, and the retry timer of ``_stop``."""


def _stop(signum: int, frame: FrameType | None) -> None:
    """Ctrl-C or SIGTERM as a KeyboardInterrupt, but never inside a destructor or inside z3's
    Python layer: Python ignores an exception raised in ``__del__`` (z3's ``AstRef.__del__`` runs
    thousands of times per BMC depth, and swallowed a Ctrl-C there), and one raised in the middle
    of a z3 call can leave a half-built object or surface as a ctypes ``ArgumentError``. There the
    stop is raised again 10 ms later, by when the call has returned to raftspec's code."""
    while frame is not None:
        if (frame.f_code.co_name == "__del__"
                or frame.f_globals.get("__name__", "").partition(".")[0] == "z3"):
            signal.setitimer(signal.ITIMER_REAL, 0.01)
            return
        frame = frame.f_back
    raise KeyboardInterrupt


class _SolverInterrupter:
    """A stop signal reaches Python's handler only between bytecodes, i.e. after a long Z3
    call has returned (an ``induct`` action can take minutes in one ``check``). Z3 handles
    SIGINT itself, but not SIGTERM, a CI job's timeout: that one was lost until the end of the
    run. So the signals' wake-up file descriptor is watched from a thread that, on SIGINT or
    SIGTERM, asks Z3 (if loaded) to cancel what it is doing, every ``EVERY`` seconds until the
    command ends: a request made while no solver call runs is forgotten by Z3, and the signal
    may arrive while the engine is still building a depth's formulas (in z3's Python layer,
    where ``_stop`` defers it) and the next ``check`` start seconds later (a CI run hung for
    a whole minute when the requests stopped after five seconds). The canceled call returns
    "unknown: canceled", which the engines raise as the KeyboardInterrupt the handler would
    have raised."""

    EVERY = 0.25

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        self._closed = threading.Event()
        os.set_blocking(self._write, False)
        self._previous = signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, daemon=True, name="raftspec-stop").start()

    def _watch(self) -> None:
        """Drains the wake-up pipe until ``close`` (a zero byte); the first stop signal starts
        the cancelling."""
        stops = {int(signal.SIGINT), int(signal.SIGTERM)}
        cancelling = False
        try:
            while True:
                data = os.read(self._read, 64)
                if not data or 0 in data:       # close(): the command is over
                    return
                if not cancelling and stops.intersection(data):
                    cancelling = True
                    threading.Thread(target=self._cancel, daemon=True,
                                     name="raftspec-cancel").start()
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                os.close(self._read)

    def _cancel(self) -> None:
        while True:
            z3 = sys.modules.get("z3")
            if z3 is not None:
                with contextlib.suppress(Exception):
                    z3.main_ctx().interrupt()
            if self._closed.wait(self.EVERY):
                return

    def close(self) -> None:
        self._closed.set()
        with contextlib.suppress(ValueError, OSError):
            signal.set_wakeup_fd(self._previous)
        with contextlib.suppress(OSError):
            os.write(self._write, b"\0")         # ends the thread, which closes its end
            os.close(self._write)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stdout, stderr = sys.stdout, sys.stderr
    if not isinstance(stdout, PipeSafeStdout):
        sys.stdout = PipeSafeStdout(stdout)
    if not isinstance(stderr, PipeSafeStdout):
        sys.stderr = PipeSafeStdout(stderr)
    try:
        return _main(argv)
    finally:
        sys.stdout, sys.stderr = stdout, stderr


def _main(argv: list[str]) -> int:
    try:
        parser = build_parser(_command_module(argv))
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        return INCOMPLETE
    if args.command is None:
        parser.print_help(sys.stderr)
        print("raftspec: error: a COMMAND is required (listed above)", file=sys.stderr)
        return USAGE
    previous = {}
    interrupter = None
    if args.command in VERDICT_COMMANDS:
        with contextlib.suppress(ValueError):   # not the main thread (tests in a thread)
            previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
            interrupter = _SolverInterrupter()
    try:
        return args.run(args)
    except (RaftspecError, NodeError) as err:
        print(f"raftspec {args.command}: error: {err}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        print(f"raftspec {args.command}: interrupted before a verdict", file=sys.stderr)
        _stopped_json(args, "interrupted")
        return INCOMPLETE
    except MemoryError:
        print(f"raftspec {args.command}: out of memory before a verdict (lower the bounds or "
              "raise --max-memory)", file=sys.stderr)
        _stopped_json(args, "out of memory")
        return INCOMPLETE
    except Exception as err:  # noqa: BLE001 - never a traceback, never a verdict's code
        print(f"raftspec {args.command}: internal error: {_one_line(err)}; this is a bug in "
              "raftspec: please report it (with the command line)", file=sys.stderr)
        return INTERNAL_ERROR
    finally:
        if previous:
            signal.setitimer(signal.ITIMER_REAL, 0)
        if interrupter is not None:
            interrupter.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stopped_json(args: argparse.Namespace, why: str) -> None:
    """With ``--json``, a stop that came before the command could report its own figures (while
    it loaded its input, say) is still one JSON object saying so."""
    if getattr(args, "json", False):
        print(json.dumps({"command": args.command, "complete": False, "stopped": why,
                          "verdict": "unknown"}), flush=True)


def _one_line(err: BaseException) -> str:
    """``ExcType: message (at file:line)`` of an unexpected exception, on one line: enough to
    report the bug, without a traceback a CI log would mistake for the verdict."""
    import traceback

    frames = traceback.extract_tb(err.__traceback__)
    at = f" (at {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    text = " ".join(str(err).split())
    if len(text) > 300:
        text = text[:300] + "..."
    return f"{type(err).__name__}: {text}{at}" if text else f"{type(err).__name__}{at}"
