"""The contract every subcommand keeps with scripts and CI: exit codes, budgets, outputs.

A CI job reads the exit code and the JSON and nothing else, so the four codes mean the same
thing for every command, and every ``--json`` object says whether its verdict is complete:

    0  ok / proved / valid / linearizable
    1  a finding about the system: a violation, not inductive, invalid, not linearizable
    2  usage, bad input or an unsupported feature (one error line, never a traceback)
    3  incomplete: a budget ran out or the run was interrupted before a verdict
    4  internal error: an unexpected exception, i.e. a bug in raftspec (one line naming the
       exception type, never a traceback); never a verdict about the system

Budgets are wall-clock seconds and resident memory. Memory is measured as the process's
resident set size (``/proc/self/statm``; peak RSS from ``getrusage`` elsewhere), polled at each
engine's progress cadence, because the large allocations (Z3's, the explorer's arrays) are not
all Python objects that ``tracemalloc`` would see, and polling costs a few microseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import sys
import textwrap
import time
from pathlib import Path

from raftspec.protocol.errors import RaftspecError

OK, FINDING, USAGE, INCOMPLETE, INTERNAL_ERROR = 0, 1, 2, 3, 4

EXIT_STATUS = """\
Exit status (the same for every raftspec command): 0 ok; 1 a finding ({finding}); 2 usage, bad
input or an unsupported feature; 3 incomplete: a budget ran out or the run was interrupted
(Ctrl-C, SIGTERM) before a verdict{partial}; 4 an internal error (a bug in raftspec; please
report it)."""

DEFAULT_MEMORY_FRACTION = 0.25
"""Default memory budget: a quarter of physical memory (6 GiB on a 24 GiB machine), so that a
runaway model leaves the machine usable for other work (TLC's default heap is a quarter too)."""

MIN_MEMORY = 64 * 2**20
"""Below this the interpreter and its imports alone would exceed the budget."""


def exit_status(finding: str, partial: str = "") -> str:
    """The exit-status paragraph of a command's ``--help``."""
    text = EXIT_STATUS.format(finding=finding, partial=partial)
    return textwrap.fill(" ".join(text.split()), width=96)


def physical_memory() -> int:
    """Bytes of physical memory (0 if the platform does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def default_memory() -> int | None:
    total = physical_memory()
    return int(total * DEFAULT_MEMORY_FRACTION) if total else None


def _resident(pid: int | str) -> int | None:
    """Resident bytes of a process now (Linux's ``/proc/PID/statm``), None where unreadable
    (not Linux, or the process is gone)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def rss_bytes() -> int:
    """Resident memory of this process now (Linux), or its peak where /proc is absent."""
    now = _resident("self")
    if now is not None:
        return now
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def _children() -> list[int]:
    """The pids of this process's worker processes (``check --workers``, ``simulate
    --workers``): they count against the same --max-memory."""
    multiprocessing = sys.modules.get("multiprocessing")
    return [] if multiprocessing is None else [c.pid for c in multiprocessing.active_children()]


def children_rss_bytes() -> int:
    """Resident memory of this process's worker processes. Linux /proc; 0 elsewhere."""
    return sum(_resident(pid) or 0 for pid in _children())


def proportional_bytes() -> int | None:
    """Memory of this process and its workers with each page shared between them counted once
    (the sum of their proportional set sizes, Linux's ``/proc/PID/smaps_rollup``), or None
    without workers or without that file. Forked workers share the pages of the parent they
    have not written to; adding up resident sizes counts those once per process (msgs2 with
    two workers stopped at a --max-memory of 64 MiB that one process stays under). Dearer to
    read than ``statm`` (the kernel walks the mappings): asked only once the resident sizes
    add up to the limit."""
    pids = _children()
    if not pids:
        return None
    total = 0
    for pid in ["self", *pids]:
        try:
            with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
                for line in f:
                    if line.startswith(b"Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except FileNotFoundError:
            if pid == "self":
                return None   # no smaps_rollup here (Linux < 4.14, or not Linux)
        except (OSError, ValueError, IndexError):
            pass   # a worker gone meanwhile
    return total


def parse_size(text: str) -> int | None:
    """``--max-memory`` values: bytes with an optional K/M/G/T suffix (powers of 1024); 0 or
    ``none`` = no limit."""
    t = text.strip().lower().removesuffix("b").removesuffix("i")
    if t in ("0", "none", "no", "off"):
        return None
    scale = 1
    for suffix, factor in (("k", 2**10), ("m", 2**20), ("g", 2**30), ("t", 2**40)):
        if t.endswith(suffix):
            t, scale = t[:-1], factor
            break
    try:
        value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a size: {text!r} (e.g. 512M, 4G, 0 = none)") from None
    if value < 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 512M, 4G, 0 = none)")
    size = int(value * scale)
    if size < MIN_MEMORY:
        raise argparse.ArgumentTypeError(f"{text!r} is below the {MIN_MEMORY // 2**20} MiB the "
                                         "interpreter itself needs (0 = no limit)")
    return size


def seconds(text: str) -> float:
    """A positive, finite number of seconds (argparse type)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


class Stopped(Exception):
    """Raised from an engine's progress callback when the budget runs out (``reason``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Z3_OUT_OF_MEMORY = "Z3 ran out of memory (its ceiling is --max-memory)"


def why_stopped(err: BaseException) -> str | None:
    """Why a run of ``bmc`` or ``induct`` stopped before a verdict, from what ended it:
    a KeyboardInterrupt (Ctrl-C, SIGTERM), a budget (``Stopped``), or a Z3 exception that is a
    stop: "canceled" (a stop signal cancelled the Z3 call under way, which raises this from
    any Z3 call, not only a solver's check) or out of memory. None: a real error."""
    if isinstance(err, KeyboardInterrupt):
        return "interrupted"
    if isinstance(err, Stopped):
        return err.reason
    text = str(err)
    if "cancel" in text or "interrupt" in text:
        return "interrupted"
    if "memory" in text:
        return Z3_OUT_OF_MEMORY
    return None


class Budget:
    """A deadline and a memory ceiling, asked with ``exceeded()`` at an engine's cadence.

    Its clock starts when the command starts (before the model is loaded): a time limit bounds
    what a CI job waits for, the whole command. A command's JSON ``seconds`` may count its
    engine's work only; ``stopped_after`` is the budget's own reading when it ran out."""

    def __init__(self, seconds: float | None = None, memory: int | None = None) -> None:
        self.started = time.perf_counter()
        self.seconds = seconds
        self.memory = memory
        self.deadline = None if seconds is None else self.started + seconds
        self.stopped: str | None = None
        self.stopped_after: float | None = None

    def elapsed(self) -> float:
        """Seconds since the budget (the command) started."""
        return time.perf_counter() - self.started

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.perf_counter()

    def exceeded(self) -> str | None:
        """Why to stop now ("time limit ...", "memory limit ..."), or None; remembered."""
        if self.stopped is None:
            if self.deadline is not None and time.perf_counter() >= self.deadline:
                self.stopped = f"time limit of {self.seconds:g} s reached"
            elif self.memory is not None and (rss := self._in_use(self.memory)) >= self.memory:
                self.stopped = (f"memory limit of {mib(self.memory)} reached "
                                f"(resident {mib(rss)})")
            if self.stopped is not None:
                self.stopped_after = self.elapsed()
        return self.stopped

    @staticmethod
    def _in_use(limit: int) -> int:
        """Resident bytes of this process and its workers; once they reach ``limit``, with the
        pages they share counted once (``proportional_bytes``), where Linux says."""
        rss = rss_bytes() + children_rss_bytes()
        if rss >= limit:
            rss = proportional_bytes() or rss
        return rss

    def describe(self) -> str:
        parts = [f"time {self.seconds:g} s" if self.seconds else "no time limit",
                 f"memory {mib(self.memory)}" if self.memory else "no memory limit"]
        return ", ".join(parts)


def add_budget_arguments(parser: argparse.ArgumentParser, time_flags: tuple[str, ...] = (
        "--time-limit",)) -> None:
    """``--time-limit SECONDS`` (default none) and ``--max-memory SIZE`` (default a quarter of
    physical memory)."""
    parser.add_argument(*time_flags, dest="time_limit", type=seconds, default=None,
                        metavar="SECONDS",
                        help="stop after SECONDS with exit 3 and partial results (default: none)")
    add_memory_argument(parser)


def add_memory_argument(parser: argparse.ArgumentParser) -> None:
    """``--max-memory SIZE`` alone, for a command whose time limit has its own meaning
    (``simulate``: the length of a search that is never complete)."""
    default = default_memory()
    parser.add_argument("--max-memory", type=parse_size, default=default, metavar="SIZE",
                        help="stop with exit 3 and partial results when resident memory reaches "
                        "SIZE, e.g. 2G (default: a quarter of physical memory"
                        + (f", {mib(default)} here" if default else "") + "; 0 = none)")


def budget_of(args: argparse.Namespace) -> Budget:
    return Budget(args.time_limit, args.max_memory)


def limit_z3_memory(memory: int | None) -> None:
    """Z3's own allocator ceiling: past it Z3 answers "out of memory" (a partial result, exit
    3) instead of the process being killed by the kernel."""
    if memory is not None:
        import z3

        z3.set_param("memory_max_size", max(1, memory // 2**20))


def check_output(path: Path | str | None, flag: str) -> None:
    """Refuse before any work an output file that cannot be written, so that a long run's
    result is never thrown away at the end. Opens it for appending (no truncation) and removes
    it again if it did not exist."""
    if path is None:
        return
    p = Path(path)
    if p.is_dir():
        raise RaftspecError("is a directory, not a file", path=str(p), field=flag)
    existed = p.exists()
    try:
        with open(p, "a"):
            pass
    except OSError as err:
        why = err.strerror or str(err)
        if not p.parent.exists():
            why = f"directory {p.parent} does not exist"
        raise RaftspecError(f"cannot write: {why}", path=str(p), field=flag) from None
    if not existed:
        with contextlib.suppress(OSError):
            p.unlink()


def check_directory(path: str | None, flag: str) -> None:
    """A directory to be created or used: refuse a file in its place, or an unwritable one."""
    if path is None:
        return
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise RaftspecError("exists and is not a directory", path=str(p), field=flag)
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise RaftspecError(f"{probe} is not a directory", path=str(p), field=flag)
    if not os.access(probe, os.W_OK | os.X_OK):
        raise RaftspecError(f"{probe} is not writable", path=str(p), field=flag)


class PipeSafeStdout:
    """sys.stdout (or stderr) that survives a reader who stops reading (``| head -1``): the rest
    of the output goes to /dev/null and the command still finishes with its verdict's exit
    code."""

    def __init__(self, stream) -> None:  # noqa: ANN001 - any text stream
        self._stream = stream
        self.broken = False

    def _redirect(self) -> None:
        self.broken = True
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):
            pass

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._redirect()
        return len(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._redirect()

    def __getattr__(self, name: str):  # noqa: ANN204 - delegate the rest (isatty, fileno, ...)
        return getattr(self._stream, name)
