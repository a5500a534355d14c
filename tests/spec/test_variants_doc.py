"""docs/variants.md is a walk-through: this test does exactly what it says, in a temporary
directory outside the repository, with real ``raftspec`` processes, and checks the output the
page shows. It also checks that a broken variant file is a clear error, never a traceback."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "variants.md"
DIRECTIVE = re.compile(r"<!-- (file|run|output|fix): ?(.*?) -->\n(?:```\w*\n(.*?)```)?", re.S)


def _raftspec(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "raftspec", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_the_walkthrough_runs_as_written(tmp_path: Path) -> None:
    steps = DIRECTIVE.findall(DOC.read_text())
    assert [kind for kind, _, _ in steps].count("run") == 2
    last = None
    for kind, arg, body in steps:
        if kind == "file":
            (tmp_path / arg).write_text(body)
        elif kind == "fix":
            name, change = arg.split(": ", 1)
            old, new = change.split(" -> ")
            path = tmp_path / name
            assert old in path.read_text()
            path.write_text(path.read_text().replace(old, new))
        elif kind == "run":
            command = body.strip().split()
            assert command[0] == "raftspec"
            last = _raftspec(command[1:], tmp_path)
            assert "Traceback" not in last.stderr
            assert last.returncode == int(arg.split()[1]), last.stdout + last.stderr
        elif kind == "output":
            assert last is not None
            lines = last.stdout.splitlines()
            position = 0
            for line in body.splitlines():  # an excerpt: its lines appear in this order
                position = next((k + 1 for k in range(position, len(lines))
                                 if lines[k].startswith(line)), None)
                assert position is not None, f"{line!r} not in the output:\n{last.stdout}"


MODEL = """name: v
servers: 2
bounds: {max_term: 2, max_log_length: 1, max_messages: 1}
variant: VARIANT
"""


@pytest.mark.parametrize(("source", "message"), [
    ("import no_such_module\n", "cannot import the variant: ModuleNotFoundError"),
    ("def edit(p:\n", "syntax error"),
    ("x = 1\n", "has no function edit(protocol) -> Protocol"),
    ("def edit(p):\n    return 42\n", "edit() returned int, not a Protocol"),
    ("def edit(p):\n    return p.replace('Timeot', apply=None)\n", "has no action 'Timeot'"),
    ("def edit(p):\n    return p.replace('Timeout', apply=lambda state, i: 42)\n",
     "action Timeout returned int, not a state"),
    ("def edit(p):\n    return p.replace('Timeout', apply=lambda state, i: 1 / 0)\n",
     "action Timeout raised ZeroDivisionError"),
    ("def edit(p):\n    raise KeyError('oops')\n", "failed in edit(): KeyError"),
])
def test_a_bad_variant_file_is_a_clear_error_naming_the_file(tmp_path: Path, source: str,
                                                               message: str) -> None:
    (tmp_path / "mine.py").write_text(source)
    (tmp_path / "m.yaml").write_text(MODEL.replace("VARIANT", "mine.py"))
    result = _raftspec(["check", "m.yaml"], tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "mine.py" in result.stderr and message in result.stderr, result.stderr


def test_a_missing_variant_file_or_module_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(MODEL.replace("VARIANT", "nowhere.py"))
    result = _raftspec(["check", "m.yaml"], tmp_path)
    assert result.returncode == 2 and "nowhere.py: no such variant file" in result.stderr
    (tmp_path / "m.yaml").write_text(MODEL.replace("VARIANT", "no.such.module"))
    result = _raftspec(["check", "m.yaml"], tmp_path)
    assert result.returncode == 2 and "m.yaml:4: variant: no variant or module named" in (
        result.stderr)


def test_bmc_refuses_a_variant_action_without_an_encoder_naming_it(tmp_path: Path) -> None:
    (tmp_path / "self_vote.py").write_text(
        "from raftspec.reference.variants.figure2 import timeout\n\n"
        "def edit(p):\n    return p.replace('Timeout', apply=timeout)\n")
    (tmp_path / "m.yaml").write_text(MODEL.replace("VARIANT", "self_vote.py"))
    result = _raftspec(["bmc", "m.yaml", "--depth", "3"], tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "no encoder for action(s) Timeout of raft.tla + self_vote.py" in result.stderr
