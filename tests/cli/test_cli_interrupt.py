"""Ctrl-C (SIGINT) and a CI timeout (SIGTERM) sent to real processes mid-run: partial
statistics, "complete": false with "stopped", exit 3, and no traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raftspec.spec.model import MODELS_DIR

sys.path.insert(0, str(Path(__file__).parent))
from test_cli_bad_inputs import hard_history  # noqa: E402

RUNNING = 2.0
"""CPU seconds a command (with its worker processes) spends before the signal: past the
interpreter's imports, into the work. Counted in CPU rather than wall seconds so that a loaded
machine, which slows the command down, does not move the signal back into its start-up."""
PATIENCE = 60.0
"""Wall seconds at most to wait for those CPU seconds."""


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and of its living children (Linux /proc;
    elsewhere 0, and ``interrupt`` waits in wall seconds instead)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended meanwhile
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1]: the parent's pid
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def _wait_busy(proc: subprocess.Popen, cpu: float) -> None:
    """Until ``proc`` and its children have used ``cpu`` CPU seconds, it ended, or PATIENCE."""
    if not Path("/proc/self/stat").exists():
        time.sleep(cpu)
        return
    deadline = time.monotonic() + PATIENCE
    while (proc.poll() is None and time.monotonic() < deadline
           and _cpu_seconds(proc.pid) < cpu):
        time.sleep(0.05)


class Interrupted(subprocess.CompletedProcess):
    """A finished process, with the wall seconds from its start to the signal (``running``)
    and from the signal to its end (``stopping``)."""

    def __init__(self, proc: subprocess.Popen, out: str, err: str, running: float,
                 stopping: float) -> None:
        super().__init__(proc.args, proc.returncode, out, err)
        self.running = running
        self.stopping = stopping


def interrupt(argv: list[str], sig: int = signal.SIGINT, after: float = RUNNING) -> Interrupted:
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "raftspec", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        _wait_busy(proc, after)
        assert proc.poll() is None, "finished before the signal: the test needs a longer run"
        signalled = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Interrupted(proc, out, err, signalled - started, time.monotonic() - signalled)


def _json(proc: subprocess.CompletedProcess) -> dict:
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 3, (proc.returncode, proc.stderr)
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report["complete"] is False and report["stopped"] == "interrupted", report
    return report


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_check_interrupted_reports_the_states_explored_and_exits_3(sig: int) -> None:
    report = _json(interrupt(["check", str(MODELS_DIR / "mutant_commit_previous_term.yaml"),
                              "--json"], sig))
    assert report["verdict"] == "incomplete"
    assert report["distinct_states"] > 1000 and report["depth"] > 1


def test_check_interrupted_in_text_mode_prints_partial_statistics() -> None:
    proc = interrupt(["check", str(MODELS_DIR / "mutant_commit_previous_term.yaml")])
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert "stopped before a verdict: interrupted" in proc.stdout
    assert "INCOMPLETE:" in proc.stdout and "distinct states" in proc.stdout


@pytest.mark.parametrize("engine, sig", [("cadical", signal.SIGTERM), ("z3", signal.SIGINT)])
def test_bmc_interrupted_reports_the_depth_reached_and_exits_3(engine: str, sig: int) -> None:
    report = _json(interrupt(["bmc", str(MODELS_DIR / "mutant_no_term_check_on_append.yaml"),
                              "--depth", "40", "--engine", engine, "--json"], sig, after=5.0))
    assert report["verdict"] == "incomplete" and report["requested_depth"] == 40
    assert 0 <= report["depth"] < 40 and report["violated"] is None


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_induct_interrupted_exits_3_and_proves_nothing(tmp_path: Path, sig: int) -> None:
    """Z3 handles SIGINT itself; SIGTERM (a CI timeout) reached Python only after the Z3 call
    under way returned: minutes for an induct action (it was lost for a whole 10-minute run).
    Either must stop the run within seconds."""
    model = tmp_path / "big.yaml"
    model.write_text("name: big\nservers: 3\nvalues: 2\n"
                     "bounds: {max_term: 6, max_log_length: 5, max_messages: 3}\n")
    proc = interrupt(["induct", str(model), "--invariant", "log_matching", "--with",
                      "shipped", "--json"], sig)
    assert proc.stopping < 10
    report = _json(proc)
    assert report["verdict"] == "incomplete"
    assert report["checked_actions"] == len(report["actions"])


def test_matrix_interrupted_is_unknown_not_ok_and_exits_3() -> None:
    """A Ctrl-C during matrix's search printed "ok (35,002 states)" and exited 0: the states
    explored so far decide nothing. The model searched is the Figure 8 mutant's, which BFS
    never exhausts (mid2, used before, now finishes in about as long as the signal waits)."""
    report = _json(interrupt(["matrix", str(MODELS_DIR / "mutant_commit_previous_term.yaml"),
                              str(MODELS_DIR / "conformance" / "tiny2.yaml"), "--json"]))
    deep, tiny2 = report["models"]
    assert (deep["complete"], deep["stopped"]) == (False, "interrupted")
    assert deep["distinct_states"] > 0
    # its properties are unknown; tiny2's others are not among its model's properties
    assert {c["status"] for c in deep["cells"].values()} == {"unknown", "not checked"}
    assert tiny2["complete"] is False and tiny2["stopped"] == "not started: interrupted"


def test_simulate_interrupted_reports_its_walks_and_exits_3() -> None:
    proc = interrupt(["simulate", str(MODELS_DIR / "conformance" / "mid2.yaml"),
                      "--time-limit", "60", "--json"], signal.SIGTERM)
    report = _json(proc)
    assert report["verdict"] == "incomplete" and report["violated"] is None
    assert report["walks"] > 0 and report["steps"] > report["walks"]
    assert 0 < report["seconds"] < proc.running + proc.stopping


def test_simulate_with_workers_interrupted_in_text_mode_prints_partial_statistics() -> None:
    """Ctrl-C on a terminal reaches the workers too: they leave it to the parent (no
    traceback of theirs), which asks each for the walks it completed and reports them (the
    exactness of those figures: tests/checker/test_simulate_shrink.py). The signal waits for
    2 CPU seconds per process (parent and two workers), well into the walks."""
    proc = interrupt(["simulate", str(MODELS_DIR / "conformance" / "mid2.yaml"), "--workers",
                      "2"], after=3 * RUNNING)
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert "incomplete (interrupted): no violation in " in proc.stdout
    walks = int(proc.stdout.split(" walks, ")[0].rsplit(" ", 1)[1].replace(",", ""))
    assert walks > 0


def test_lincheck_interrupted_is_unknown_not_a_finding(tmp_path: Path) -> None:
    history = tmp_path / "hard.ndjson"
    history.write_text(hard_history(22))
    proc = interrupt(["lincheck", str(history), "--json"])
    assert proc.returncode == 3 and "Traceback" not in proc.stderr, proc.stderr
    report = json.loads(proc.stdout)
    assert report["verdict"] == "unknown" and report["linearizable"] is None
    assert report["stopped"] == "interrupted" and report["complete"] is False


def test_a_ctrl_c_landing_in_a_destructor_is_not_lost() -> None:
    """Python ignores an exception raised inside ``__del__``; z3 runs its destructor thousands of
    times per BMC depth, and a Ctrl-C arriving there was swallowed (the run went on for minutes).
    The CLI's handler raises it again once the destructor has returned."""
    import os

    from raftspec.cli import STOP_SIGNALS, _stop

    class Busy:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            end = time.monotonic() + 0.05
            while time.monotonic() < end:  # the handler runs here, inside the destructor
                pass

    previous = {sig: signal.signal(sig, _stop) for sig in STOP_SIGNALS}
    caught = False
    try:
        obj = Busy()
        del obj
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            pass
    except KeyboardInterrupt:
        caught = True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    assert caught


STOP_THEN_SOLVE = """
import os, signal, sys, time
import z3
from raftspec.cli import _SolverInterrupter

signal.signal(signal.SIGTERM, lambda signum, frame: None)  # seen through the wake-up fd only
stopper = _SolverInterrupter()
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(float(sys.argv[1]))        # still building formulas, no solver call under way
n = 13                                # pigeonhole 13 into 12: minutes for Z3 if not cancelled
holes = [[z3.Bool(f"p{i}_{j}") for j in range(n - 1)] for i in range(n)]
solver = z3.Solver()
solver.add([z3.Or(row) for row in holes])
solver.add([z3.Or(z3.Not(holes[i][j]), z3.Not(holes[k][j]))
            for j in range(n - 1) for i in range(n) for k in range(i + 1, n)])
started = time.monotonic()
verdict = solver.check()
print(verdict, solver.reason_unknown(), round(time.monotonic() - started, 1))
stopper.close()
"""


def test_a_solver_call_started_long_after_the_stop_signal_is_cancelled_too() -> None:
    """The signal may arrive while a depth's formulas are being built and the next solver call
    start seconds later; Z3 forgets a cancel request made while no call runs. A CI run of
    ``bmc --engine z3`` hung past its 60 s when the requests stopped five seconds after the
    signal: the call started 6 s after it must be cancelled within a few seconds."""
    proc = subprocess.run([sys.executable, "-c", STOP_THEN_SOLVE, "6"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    verdict, *reason, seconds = proc.stdout.split()
    assert verdict == "unknown" and " ".join(reason) in ("canceled", "interrupted"), proc.stdout
    assert float(seconds) < 5.0, proc.stdout


@pytest.mark.parametrize(("stop", "why"), [(KeyboardInterrupt, "interrupted"),
                                           (MemoryError, "out of memory")])
@pytest.mark.parametrize("command", ["validate", "lincheck", "check"])
def test_a_stop_before_the_command_reports_is_still_one_json_object(
        command: str, stop: type[BaseException], why: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A stop the command does not turn into its own report (one while it reads its input, say)
    still prints a JSON object with ``complete: false`` (before: nothing on stdout)."""
    import importlib

    from raftspec import cli

    def stopped(_args: object) -> int:
        raise stop

    monkeypatch.setattr(importlib.import_module(f"raftspec.commands.{command}"), "run", stopped)
    target = tmp_path / "input"
    target.write_text("")
    assert cli.main([command, str(target), "--json"]) == 3
    out, err = capsys.readouterr()
    assert json.loads(out) == {"command": command, "complete": False, "stopped": why,
                               "verdict": "unknown"}
    assert "before a verdict" in err
