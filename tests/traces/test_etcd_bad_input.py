"""A malformed etcd-raft trace line is refused with exit 2 naming file:line and the field, never
an internal error: every field the validator reads is checked for its type and range (node ids,
terms and indexes are etcd's uint64), whatever JSON value stands in its place."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from raftspec.cli import main
from raftspec.protocol.errors import RaftspecError
from raftspec.traces.etcd import EtcdAdapter
from raftspec.traces.etcd.read import read_lines
from raftspec.traces.validate import validate_paths

ETCD = Path(__file__).resolve().parents[2].parent / "shared" / "traces" / "etcd-raft"
# Every kind of field in 38 lines: messages, a ChangeConf's changes, ApplyConfChange's newconf.
TRACE = ETCD / "interaction" / "confchange_v2_add_single_auto.ndjson"

needs_trace = pytest.mark.skipif(not TRACE.is_file(), reason=f"{ETCD} not present (it ships "
                                "with the project's CI, not with clones)")

FIELDS = (("name",), ("nid",), ("state",), ("state", "term"), ("state", "vote"),
          ("state", "commit"), ("role",), ("log",), ("conf",), ("conf", 0), ("conf", 0, 0),
          ("msg",), ("msg", "type"), ("msg", "term"), ("msg", "entries"), ("msg", "logTerm"),
          ("msg", "index"), ("msg", "commit"), ("msg", "rejectHint"), ("msg", "from"),
          ("msg", "to"), ("msg", "reject"), ("prop", "cc"), ("prop", "cc", "changes"),
          ("prop", "cc", "changes", 0, "nid"), ("prop", "cc", "changes", 0, "action"),
          ("prop", "cc", "newconf"), ("prop", "cc", "newconf", 0))
IDS = (("nid",), ("state", "vote"), ("conf", 0, 0), ("msg", "from"), ("msg", "to"),
       ("prop", "cc", "changes", 0, "nid"), ("prop", "cc", "newconf", 0))
UINT64 = 2 ** 64 - 1


def _lines() -> list[str]:
    return TRACE.read_text().splitlines(keepends=True) if TRACE.is_file() else []


def _get(event: dict, field: tuple):
    for key in field:
        event = event[key]
    return event


def _has(event: dict, field: tuple) -> bool:
    try:
        _get(event, field)
    except (KeyError, IndexError, TypeError):
        return False
    return True


def _write(tmp: Path, line: int, field: tuple, value) -> Path:
    """The trace with ``field`` of the event on (1-based) ``line`` set to ``value``."""
    lines = _lines()
    obj = json.loads(lines[line - 1])
    _get(obj["event"], field[:-1])[field[-1]] = value
    lines[line - 1] = json.dumps(obj) + "\n"
    path = tmp / "t.ndjson"
    path.write_text("".join(lines))
    return path


def _dotted(field: tuple) -> str:
    return ".".join(("event", *map(str, field)))


def _sites(field: tuple) -> list[int]:
    return [n for n, line in enumerate(_lines(), 1) if _has(json.loads(line)["event"], field)]


@needs_trace
@pytest.mark.parametrize(("field", "value", "named"), [
    (("role",), [], "event.role"),
    (("name",), {}, "event.name"),
    (("nid",), "\u00b2", "event.nid"),              # isdigit() took it, int() refused it
    (("nid",), "\u0663", "event.nid"),              # Arabic-Indic 3, silently read as node 3
    (("nid",), "9" * 5000, "event.nid"),            # beyond int()'s 4300 digits
    (("nid",), "0", "event.nid"),
    (("nid",), str(UINT64 + 1), "event.nid"),
    (("state", "vote"), "\u00b2", "event.state.vote"),
    (("state", "vote"), "9" * 5000, "event.state.vote"),
    (("state", "term"), UINT64 + 1, "event.state.term"),
    (("log",), 10 ** 400, "event.log"),
    (("conf", 0, 0), "\u0663", "event.conf"),
    (("msg", "from"), "9" * 5000, "event.msg.from"),
    (("msg", "to"), "\u00b2", "event.msg.to"),
    (("msg", "index"), UINT64 + 1, "event.msg.index"),
    (("prop", "cc", "newconf", 0), "9" * 5000, "event.prop.cc.newconf"),
    (("prop", "cc", "changes", 0, "nid"), "\u00b2", "event.prop.cc.changes"),
], ids=lambda x: x[:12] if isinstance(x, str) else None)
def test_a_wrong_type_or_range_exits_2_naming_line_and_field(field, value, named,
                                                              tmp_path: Path, capsys) -> None:
    line = _sites(field)[0]
    path = _write(tmp_path, line, field, value)
    assert main(["validate", str(path)]) == 2
    assert f"{path}:{line}: {named}: " in capsys.readouterr().err


@needs_trace
def test_the_largest_uint64_is_a_node_id_a_term_and_an_index(tmp_path: Path) -> None:
    """etcd's ids are uint64 (its server draws 64-bit member ids): the bound is etcd's."""
    for field in (("nid",), ("state", "vote"), ("msg", "to"), ("state", "term"), ("log",)):
        value = UINT64 if field in (("state", "term"), ("log",)) else str(UINT64)
        line = _sites(field)[0]
        read = dict(read_lines(str(_write(tmp_path, line, field, value))))
        assert _get(read[line], field) == value


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2 ** 70, max_value=2 ** 70)
    | st.floats() | st.text(max_size=8) | st.just("9" * 5000),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6)


def _verdict_or_refusal(path: Path) -> RaftspecError | None:
    """Validate; a refusal is returned, any other exception fails the test."""
    try:
        validate_paths([str(path)], EtcdAdapter())
    except RaftspecError as err:
        return err
    return None


@needs_trace
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data(), field=st.sampled_from(FIELDS), value=JSON)
def test_any_json_value_in_any_field_is_a_verdict_or_a_refusal_naming_it(
        data, field, value, tmp_path: Path) -> None:
    line = data.draw(st.sampled_from(_sites(field)))
    original = _get(json.loads(_lines()[line - 1])["event"], field)
    err = _verdict_or_refusal(_write(tmp_path, line, field, value))
    if type(value) is not type(original):
        assert err is not None and err.line == line and err.field is not None
        assert _dotted(field).startswith(err.field)


DIGITS = re.compile(r"[0-9]{1,20}")


@needs_trace
@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data(), field=st.sampled_from(IDS),
       value=st.text(max_size=4) | st.text("0123456789\u00b2\u0663\u0967\uff13", max_size=22)
       | st.integers(0, 2 ** 66).map(str))
def test_a_node_id_is_ascii_digits_in_etcds_range(data, field, value, tmp_path: Path) -> None:
    line = data.draw(st.sampled_from(_sites(field)))
    lowest = 0 if field == ("state", "vote") else 1
    good = DIGITS.fullmatch(value) is not None and lowest <= int(value) <= UINT64
    err = _verdict_or_refusal(_write(tmp_path, line, field, value))
    if not good:
        assert err is not None and err.line == line and err.field is not None
        assert _dotted(field).startswith(err.field)


LINE = ('{"tag":"trace","event":{"name":"InitState","nid":"1","state":{"term":0,"vote":"0",'
        '"commit":0},"role":"StateFollower","log":0,"conf":[[],[]]}}\n')
DEEP = '{"tag":"trace","event":' + "[" * 100_000 + "]" * 100_000 + "}\n"


@pytest.mark.parametrize(("lines", "options", "line"), [
    ([DEEP], [], 1),                        # the format is recognised on it
    ([DEEP], ["--format", "etcd"], 1),
    ([LINE, DEEP], [], 2),                  # read after an etcd line
], ids=("recognising", "format-etcd", "reading"))
def test_json_nested_too_deeply_exits_2_naming_the_line(lines, options, line, tmp_path: Path,
                                                         capsys) -> None:
    path = tmp_path / "deep.ndjson"
    path.write_text("".join(lines))
    assert main(["validate", *options, str(path)]) == 2
    assert f"{path}:{line}: not valid JSON: nested too deeply" in capsys.readouterr().err
