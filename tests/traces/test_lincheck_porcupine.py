"""Every verdict of Porcupine's test corpus (../shared/linearizability/porcupine/EXPECTED.tsv).

The verdicts come from Porcupine's own test assertions (re-run with Go when the corpus was
copied), not from this checker. The corpus lives next to the repository, not in it, so a clone
without it skips these tests.
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import pytest

from raftspec.traces.lincheck import check_file, check_key, read_history
from raftspec.traces.lincheck.history import UNKNOWN

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "linearizability" / "porcupine"
TABLE = CORPUS / "EXPECTED.tsv"
MISSING = f"Porcupine corpus not found at {CORPUS} (it is shared material, not in the repo)"
MODEL = {"etcd-register": "register", "kv": "kv"}


def _rows() -> list[dict[str, str]]:
    if not TABLE.is_file():
        return []
    with TABLE.open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


ROWS = _rows()
VERDICTS = [row for row in ROWS if row["expected"] != "none"]
PARAMS = [pytest.param(row, id=Path(row["file"]).name) for row in VERDICTS] or [
    pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="corpus-missing")]
FAILING = [row for row in VERDICTS if row["expected"] == "not"]
FAILING_PARAMS = [pytest.param(row, id=Path(row["file"]).name) for row in FAILING] or [
    pytest.param(None, marks=pytest.mark.skip(reason=MISSING), id="corpus-missing")]


@pytest.mark.skipif(not TABLE.is_file(), reason=MISSING)
def test_expected_table_has_108_verdicts_over_109_files() -> None:
    assert len(ROWS) == 109
    assert len(VERDICTS) == 108
    assert sum(row["expected"] == "linearizable" for row in VERDICTS) == 26


@pytest.mark.parametrize("row", PARAMS)
def test_verdict_matches_porcupine(row: dict[str, str]) -> None:
    result = check_file(CORPUS / row["file"], explain=False)
    assert result.model == MODEL[row["model"]]
    assert result.linearizable is (row["expected"] == "linearizable")


@pytest.mark.parametrize("row", FAILING_PARAMS)
def test_failure_is_explained_by_a_minimal_non_linearizable_prefix(row: dict[str, str]) -> None:
    history = read_history(CORPUS / row["file"])
    result = check_file(CORPUS / row["file"])
    fail = result.failure
    assert fail is not None
    key_ops = [op for op in history.operations if op.key == fail.key]
    assert check_key(key_ops, history.model) is False
    culprit = fail.culprit
    assert culprit in fail.prefix and culprit in fail.window and culprit in fail.witness
    # The prefix, with whatever was still running at the culprit's response left open, is
    # already illegal; with the culprit's response removed as well it is legal again.
    assert all(op in key_ops for op in fail.prefix)
    assert check_key(fail.witness, history.model) is False
    if not fail.minimal:
        return
    relaxed = [replace(op, out=UNKNOWN, ret=math.inf) if op is culprit else op
               for op in fail.witness]
    assert check_key(relaxed, history.model) is True


@pytest.mark.skipif(not TABLE.is_file(), reason=MISSING)
def test_empty_etcd_095_is_an_empty_linearizable_history() -> None:
    result = check_file(CORPUS / "test_data/jepsen/etcd_095.log")
    assert result.operations == 0
    assert result.linearizable
