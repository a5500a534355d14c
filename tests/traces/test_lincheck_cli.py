"""``raftspec lincheck`` end to end: readers, exit codes, --json, error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from raftspec import cli
from raftspec.traces.lincheck import parse, read_history

JEPSEN_OK = """\
INFO  jepsen.util - 0\t:invoke\t:write\t1
INFO  jepsen.util - 0\t:ok\t:write\t1
INFO  jepsen.util - 1\t:invoke\t:cas\t[1 2]
INFO  jepsen.util - 2 :invoke :read nil
INFO  jepsen.util - 1\t:ok\t:cas\t[1 2]
INFO  jepsen.util - 2\t:ok\t:read\t2
INFO  jepsen.util - 3\t:invoke\t:write\t4
INFO  jepsen.util - 3\t:info\t:write\t:timed-out
INFO  jepsen.util - 4\t:invoke\t:read\tnil
INFO  jepsen.util - 4\t:fail\t:read\t:timed-out
"""
JEPSEN_BAD = JEPSEN_OK + """\
INFO  jepsen.util - 5\t:invoke\t:read\tnil
INFO  jepsen.util - 5\t:ok\t:read\t1
"""
KV_OK = """\
{:process 0, :type :invoke, :f :put, :key "a", :value "x \\"q\\""}
{:process 0, :type :ok, :f :put, :key "a", :value "x \\"q\\""}
{:process 1, :type :invoke, :f :get, :key "a", :value nil}
{:process 1, :type :ok, :f :get, :key "a", :value "x \\"q\\""}
"""
NDJSON_BAD = "\n".join([
    '{"process": 0, "type": "invoke", "f": "append", "key": "k", "value": "a", "time": 10}',
    '{"process": 0, "type": "ok", "f": "append", "key": "k", "value": "a", "time": 20}',
    '{"process": 1, "type": "invoke", "f": "get", "key": "k", "value": null, "time": 30}',
    '{"process": 1, "type": "ok", "f": "get", "key": "k", "value": "", "time": 40}',
]) + "\n"


@pytest.fixture(autouse=True)
def only_lincheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """Other subcommands are other packages' business; build the parser with this one only."""
    monkeypatch.setattr(cli, "COMMANDS", ("raftspec.commands.lincheck",))


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_lincheck_is_registered_in_the_cli() -> None:
    import importlib

    importlib.reload(cli)
    assert "raftspec.commands.lincheck" in cli.COMMANDS


def test_jepsen_reader_pairs_calls_with_returns() -> None:
    ops = parse(JEPSEN_OK, "t.log").operations
    assert [(op.process, op.f, op.arg, op.out) for op in ops] == [
        (0, "write", 1, None), (1, "cas", (1, 2), True), (2, "read", None, 2),
        (3, "write", 4, ops[3].out)]
    assert (ops[1].call, ops[1].ret, ops[2].call, ops[2].ret) == (3, 5, 4, 6)
    assert ops[3].open and repr(ops[3].out) == "UNKNOWN"


def test_porcupine_kv_reader_unescapes_strings() -> None:
    ops = parse(KV_OK, "t.txt").operations
    assert [(op.f, op.key, op.arg, op.out) for op in ops] == [
        ("put", "a", 'x "q"', None), ("get", "a", None, 'x "q"')]


def test_exit_0_when_every_history_is_linearizable(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    files = [write(tmp_path, "a.log", JEPSEN_OK), write(tmp_path, "b.txt", KV_OK)]
    assert cli.main(["lincheck", *map(str, files)]) == 0
    out = capsys.readouterr().out
    assert out.count(": linearizable (") == 2


def test_exit_1_and_json_lines_when_one_is_not(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    files = [write(tmp_path, "a.log", JEPSEN_OK), write(tmp_path, "b.ndjson", NDJSON_BAD)]
    assert cli.main(["lincheck", "--json", *map(str, files)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    first, second = map(json.loads, lines)
    for obj in (first, second):
        assert {"file", "model", "linearizable", "seconds"} <= obj.keys()
        assert isinstance(obj["seconds"], float)
    assert (first["file"], first["model"], first["linearizable"]) == (str(files[0]), "register",
                                                                      True)
    assert (second["model"], second["linearizable"], second["failing_key"]) == ("kv", False, "k")
    assert second["culprit"]["line"] == 3


def test_text_timeline_and_html_show_the_culprit(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = write(tmp_path, "bad.log", JEPSEN_BAD)
    page = tmp_path / "report.html"
    assert cli.main(["lincheck", "--timeline", "--html", str(page), str(bad)]) == 1
    out = capsys.readouterr().out
    assert "NOT linearizable" in out
    assert "read() -> 1 (lines 11-12)" in out
    assert "<- culprit" in out.split("timeline of the register")[1]
    assert "read() -&gt; 1" in page.read_text()


def test_model_flag_overrides_the_format(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "a.txt", KV_OK)
    assert cli.main(["lincheck", "--model", "register", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:1: f: operation 'put' is not part of the register model" in err


@pytest.mark.parametrize(("text", "line", "field"), [
    (NDJSON_BAD.replace('"time": 30', '"time": "late"'), 3, "time"),
    (NDJSON_BAD.replace(', "key": "k", "value": null', ', "value": null'), 3, "key"),
    (NDJSON_BAD.replace('"type": "ok", "f": "get"', '"type": "done", "f": "get"'), 4, "type"),
    (NDJSON_BAD.replace('"type": "ok", "f": "get"', '"type": "ok", "f": "put"'), 4, "f"),
    (NDJSON_BAD.replace('"time": 40}', '"time": 40'), 4, "line"),
    ("\n".join(NDJSON_BAD.splitlines()[0:3:2]).replace('"process": 1', '"process": 0'), 2,
     "process"),
    # before: NaN and Infinity made this non-linearizable history "linearizable" (exit 0),
    # 10**400 an OverflowError (exit 4), deep nesting a RecursionError (exit 4)
    (NDJSON_BAD.replace('"time": 20', '"time": NaN'), 2, "time"),
    (NDJSON_BAD.replace('"time": 20', '"time": Infinity'), 2, "time"),
    (NDJSON_BAD.replace('"time": 40', '"time": 1' + "0" * 400), 4, "time"),
    (NDJSON_BAD + "[" * 100_000 + "\n", 5, "line"),
])
def test_bad_ndjson_names_file_line_and_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                              text: str, line: int, field: str) -> None:
    path = write(tmp_path, "h.ndjson", text)
    assert text != NDJSON_BAD
    assert cli.main(["lincheck", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line}: {field}: " in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("text", "line", "field"), [
    (JEPSEN_OK.replace(":cas\t[1 2]\nINFO  jepsen.util - 2", ":cas\t[1]\nINFO  jepsen.util - 2"),
     3, "value"),
    (JEPSEN_OK.replace("0\t:ok\t:write", "7\t:ok\t:write"), 2, "process"),
    (JEPSEN_OK.replace(":ok\t:read\t2", ":ok\t:read\ttwo"), 6, "value"),
    (JEPSEN_OK + "garbage\n", 11, "line"),
])
def test_bad_jepsen_log_names_file_line_and_field(tmp_path: Path, text: str, line: int,
                                                  field: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "h.log", text)
    assert text != JEPSEN_OK
    assert cli.main(["lincheck", str(path)]) == 2
    assert f"{path}:{line}: {field}: " in capsys.readouterr().err


def test_missing_file_is_exit_2_with_its_name(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.ndjson"
    assert cli.main(["lincheck", str(missing)]) == 2
    assert f"{missing}: cannot read history" in capsys.readouterr().err
    # after one that has a finding: refused before any work (before: the finding printed,
    # then exit 2 for the missing one, the finding lost from the exit status)
    found = write(tmp_path, "h.ndjson", NDJSON_BAD)
    assert cli.main(["lincheck", str(found), str(missing)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and f"{missing}: cannot read history" in err


def test_empty_file_is_an_empty_history(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "empty.log", "")
    assert read_history(path).model == "register"
    assert cli.main(["lincheck", str(path)]) == 0
    assert "empty history" in capsys.readouterr().out


def test_help_describes_formats_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["lincheck", "--help"])
    out = capsys.readouterr().out
    for word in ("jepsen", "porcupine-kv", "ndjson", "--timeline", "--html", "Exit status"):
        assert word in out
