"""etcd-raft's own traces (../shared/traces/etcd-raft, recorded from its unmodified code) are
real behaviours: each is valid against reference/variants/etcd.py, or refused with exit 2
naming what the variant does not model. Also: format recognition, gzip, diagnostics in etcd's
terms, and the campaign guard of etcd-io/raft #456."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from raftspec.cli import main
from raftspec.protocol.errors import RaftspecError
from raftspec.traces.etcd import EtcdAdapter, looks_like_etcd
from raftspec.traces.validate import validate_paths

ETCD = Path(__file__).resolve().parents[2].parent / "shared" / "traces" / "etcd-raft"

# The one trace that is not a closed run: its scenario hands node 3 a snapshot that no node
# sent (shared README: "every Receive has an earlier matching Send (one exception: ...)").
UNSUPPORTED = {"snapshot_succeed_via_app_resp_behind.ndjson":
               (65, "unsupported: a MsgSnap that no node of the trace sent")}


ABSENT = pytest.param(None, marks=pytest.mark.skip(
    reason=f"{ETCD} not present (it ships with the project's CI, not with clones)"))


def _traces() -> list:
    return sorted(p for p in ETCD.glob("*/*.ndjson*")) if ETCD.is_dir() else [ABSENT]


@pytest.fixture
def etcd_dir() -> Path:
    if not ETCD.is_dir():
        pytest.skip(f"{ETCD} not present (it ships with the project's CI, not with clones)")
    return ETCD


def test_all_33_shared_traces_are_present(etcd_dir: Path) -> None:
    assert len(_traces()) == 33


@pytest.mark.parametrize("path", _traces(), ids=lambda p: p.name if p else "absent")
def test_each_shared_trace_is_valid_or_refused_as_unsupported(path: Path) -> None:
    if path.name in UNSUPPORTED:
        line, text = UNSUPPORTED[path.name]
        with pytest.raises(RaftspecError) as err:
            validate_paths([str(path)], EtcdAdapter())
        assert err.value.line == line and text in str(err.value)
        return
    verdict = validate_paths([str(path)], EtcdAdapter())
    assert verdict.valid, path.name
    assert verdict.seconds < 5


def test_the_format_is_recognised_by_content_and_gzip_is_read(etcd_dir: Path, capsys) -> None:
    example = etcd_dir / "upstream" / "example.ndjson.gz"
    assert looks_like_etcd(str(example))
    assert main(["validate", "--json", str(example)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True and out["events"] == 4888


def test_an_unsupported_feature_exits_2_naming_feature_and_line(etcd_dir: Path,
                                                                 capsys) -> None:
    path = etcd_dir / "interaction" / "snapshot_succeed_via_app_resp_behind.ndjson"
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:65: unsupported: a MsgSnap that no node of the trace sent" in err


def test_forcing_the_wrong_format_is_a_clear_error(etcd_dir: Path, capsys) -> None:
    path = etcd_dir / "interaction" / "campaign.ndjson"
    assert main(["validate", "--format", "raftspec", str(path)]) == 2
    assert f"{path}:1: " in capsys.readouterr().err
    ours = sorted((Path(__file__).parent / "data" / "faults").glob("node-*.ndjson"))[0]
    assert not looks_like_etcd(str(ours))
    assert main(["validate", "--format", "etcd", str(ours)]) == 2
    assert f"{ours}: no etcd-raft event: no line is tagged \"trace\"" in capsys.readouterr().err


def _edited(src: Path, dst: Path, line: int, edit) -> Path:
    lines = src.read_text().splitlines(keepends=True)
    obj = json.loads(lines[line - 1])
    edit(obj["event"])
    lines[line - 1] = json.dumps(obj) + "\n"
    dst.write_text("".join(lines))
    return dst


def test_a_wrong_heartbeat_commit_is_named_in_etcds_terms(etcd_dir: Path, tmp_path: Path,
                                                           capsys) -> None:
    src = etcd_dir / "interaction" / "lagging_commit.ndjson"
    lines = src.read_text().splitlines()
    n = next(k for k, line in enumerate(lines, 1)
             if '"type":"MsgHeartbeat"' in line and "SendAppendEntriesRequest" in line)
    bad = _edited(src, tmp_path / "t.ndjson", n, lambda e: e["msg"].update(
        commit=e["msg"]["commit"] + 1))
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"invalid: {bad}:{n}: ")
    assert "closest action: sendHeartbeat(" in out
    assert "is min(Progress[" in out and "].Match" in out


def test_a_wrong_reject_hint_is_named(etcd_dir: Path, tmp_path: Path, capsys) -> None:
    src = etcd_dir / "interaction" / "probe_and_replicate.ndjson"
    lines = src.read_text().splitlines()
    n = next(k for k, line in enumerate(lines, 1)
             if '"reject":true' in line and "SendAppendEntriesResponse" in line)
    bad = _edited(src, tmp_path / "t.ndjson", n, lambda e: e["msg"].update(
        rejectHint=e["msg"]["rejectHint"] + 1))
    assert main(["validate", str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:{n}: " in out and "handle_append_entries(" in out and "rejectHint" in out


CAMPAIGN = "confchange_v1_remove_leader.ndjson"


def test_campaigning_with_an_unapplied_conf_change_is_refused_by_the_guard(
        etcd_dir: Path, tmp_path: Path) -> None:
    """A follower has committed a configuration entry (its MsgAppResp shows the commit) and
    has not handled the Ready that applies it; it campaigns right then: etcd's hup refuses
    (etcd-io/raft #456). The same trace without the guard is accepted."""
    src = (etcd_dir / "interaction" / CAMPAIGN).read_text().splitlines(keepends=True)
    events = [json.loads(x)["event"] for x in src]
    apply = next(k for k, e in enumerate(events) if e["name"] == "ApplyConfChange"
                 and e["role"] == "StateFollower" and e["state"]["term"] > 0)
    node = events[apply]["nid"]
    ready = max(k for k in range(apply) if events[k]["nid"] == node
                and events[k]["name"] == "Ready")
    before = max(k for k in range(ready) if events[k]["nid"] == node)
    e = events[before]
    campaign = {**e, "name": "BecomeCandidate", "role": "StateCandidate",
                "state": {**e["state"], "term": e["state"]["term"] + 1, "vote": node}}
    campaign.pop("msg", None)
    obj = json.loads(src[before])
    obj["event"] = campaign
    path = tmp_path / "campaign.ndjson"
    path.write_text("".join(src[: before + 1]) + json.dumps(obj) + "\n")
    guarded = validate_paths([str(path)], EtcdAdapter())
    assert not guarded.valid and guarded.event.line == before + 2
    assert any("etcd-io/raft #456" in f for c in guarded.candidates for f in c["failed"])
    unguarded = validate_paths([str(path)], EtcdAdapter(campaign_guard=False))
    assert unguarded.valid


def test_our_cluster_traces_are_read_gzipped_too(tmp_path: Path, capsys) -> None:
    import gzip

    out = []
    for src in sorted((Path(__file__).parent / "data" / "faults").glob("node-*.ndjson")):
        dst = tmp_path / (src.name + ".gz")
        dst.write_bytes(gzip.compress(src.read_bytes()))
        out.append(str(dst))
    assert not looks_like_etcd(out[0])
    assert main(["validate", *out]) == 0
    assert capsys.readouterr().out.startswith("valid (")


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(term=st.integers(min_value=0, max_value=2 ** 64 - 1) | st.integers(2, 5000),
       name=st.sampled_from(("campaign.ndjson", "single_node.ndjson")))
@example(term=5000, name="campaign.ndjson")
def test_the_initial_state_is_one_whatever_term_a_bootstrap_initstate_logs(
        etcd_dir: Path, tmp_path: Path, term: int, name: str) -> None:
    """InitState is traced before loadState (its HardState is zero in etcd's traces) and the
    bootstrap log's term is 1 (docs/etcd.md): the term it logs must not multiply the candidates
    (it made one per term up to it, and 10^7 took 2.8 GB); it is the logged initial state, which
    the bootstrap's next events overwrite, so the verdict is the unmodified trace's."""
    src = etcd_dir / "interaction" / name
    original = validate_paths([str(src)], EtcdAdapter())
    bad = _edited(src, tmp_path / name, 1, lambda e: e["state"].update(term=term))
    verdict = validate_paths([str(bad)], EtcdAdapter())
    assert (verdict.valid, verdict.max_candidates) == (original.valid, original.max_candidates)
