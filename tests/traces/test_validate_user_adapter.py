"""``raftspec validate --adapter FILE.py``: an adapter in the user's own file validates its own
trace format; every mistake in the file is one error naming it (exit 2)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from raftspec.cli import main

# A toy implementation: each line "NODE VALUE" says node NODE's counter became VALUE; the
# reference: a counter only steps by one. Written as an implementer of another library would.
ADAPTER = '''
from raftspec.protocol.errors import RaftspecError
from raftspec.traces.validate.adapter import Attempt, Event


class CounterAdapter:
    name = "counter"

    def read(self, path):
        events = []
        with open(path) as f:
            for n, line in enumerate(f, 1):
                node, _, value = line.strip().partition(" ")
                if not (node.isdigit() and value.isdigit()):
                    raise RaftspecError("expected 'NODE VALUE'", path=path, line=n)
                events.append(Event(path, n, int(node), {"value": int(value)}))
        return events

    def initial(self, events):
        return [tuple(0 for _ in range(max(e.node for e in events)))]

    def attempts(self, event, counters):
        i, want = event.node - 1, event.data["value"]
        if want != counters[i] + 1:
            return [Attempt(f"Increment(n{event.node})",
                            (f"value {want} is counter {counters[i]} + 1",))]
        return [Attempt(f"Increment(n{event.node})", (),
                        counters[:i] + (want,) + counters[i + 1:])]

    def silent(self, counters):
        return ()

    def describe(self, counters):
        return [f"counters {list(counters)}"], {"counters": list(counters)}


def make_adapter():
    return CounterAdapter()
'''


def _write(tmp_path: Path, adapter: str, trace: str) -> tuple[str, str]:
    a = tmp_path / "my_adapter.py"
    a.write_text(textwrap.dedent(adapter))
    t = tmp_path / "run.log"
    t.write_text(trace)
    return str(a), str(t)


def test_an_out_of_tree_adapter_validates_its_own_format(tmp_path: Path, capsys) -> None:
    a, t = _write(tmp_path, ADAPTER, "1 1\n2 1\n1 2\n")
    assert main(["validate", "--adapter", a, t]) == 0
    assert capsys.readouterr().out.startswith("valid (3 events, ")


def test_an_out_of_tree_adapter_names_the_first_unexplained_line(tmp_path: Path,
                                                                  capsys) -> None:
    a, t = _write(tmp_path, ADAPTER, "1 1\n2 1\n1 3\n2 2\n")
    assert main(["validate", "--adapter", a, t]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"invalid: {t}:3: ")
    assert "counters [1, 1]" in out and "failed: value 3 is counter 1 + 1" in out


@pytest.mark.parametrize(("source", "message"), [
    ("def make_adapter(:\n", "syntax error"),
    ("import no_such_module_here\n", "cannot import the adapter: ModuleNotFoundError"),
    ("x = 1\n", "defines no function make_adapter()"),
    ("def make_adapter():\n    return object()\n",
     "lacks the method(s) read, initial, attempts, silent, describe"),
    (ADAPTER.replace("return [tuple(0", "return [tuple(1 // 0"),
     "adapter method initial() raised ZeroDivisionError"),
])
def test_every_mistake_in_the_adapter_file_is_one_error_naming_it(
        tmp_path: Path, capsys, source: str, message: str) -> None:
    a, t = _write(tmp_path, source, "1 1\n")
    assert main(["validate", "--adapter", a, t]) == 2
    err = capsys.readouterr().err
    assert a in err and message in err
    assert "Traceback" not in err


def test_a_missing_adapter_file_is_named(tmp_path: Path, capsys) -> None:
    t = tmp_path / "run.log"
    t.write_text("1 1\n")
    assert main(["validate", "--adapter", str(tmp_path / "nope.py"), str(t)]) == 2
    assert "nope.py: no such adapter file" in capsys.readouterr().err
