"""``raftspec check`` as a user runs it: exit codes, JSON shape, errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

from raftspec.spec.model import MODELS_DIR

TINY2 = str(MODELS_DIR / "conformance" / "tiny2.yaml")


def raftspec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raftspec", *args], capture_output=True,
                          text=True, timeout=600)


def test_json_report_has_the_documented_keys_and_tlc_counts() -> None:
    proc = raftspec("check", TINY2, "--json")
    assert proc.returncode == 0, proc.stderr
    (line,) = proc.stdout.splitlines()
    report = json.loads(line)
    assert report["model"] == "tiny2" and report["verdict"] == "ok"
    assert (report["distinct_states"], report["states_generated"], report["depth"]) == (
        1645, 12861, 28)
    assert report["violated"] is None and report["counterexample"] is None
    assert isinstance(report["seconds"], float)
    assert 0 < report["fingerprint_collision_probability"] < 1e-9


def test_symmetry_flag_overrides_the_model() -> None:
    report = json.loads(raftspec("check", TINY2, "--json", "--symmetry").stdout)
    assert (report["distinct_states"], report["states_generated"]) == (831, 6475)


def test_violation_exits_1_with_a_shortest_counterexample_from_init(tmp_path) -> None:
    mermaid = tmp_path / "cex.mmd"
    proc = raftspec("check", str(MODELS_DIR / "mutant_vote_without_log_check.yaml"), "--json",
                    "--mermaid", str(mermaid))
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["verdict"] == "violation" and report["violated"] == "leader_completeness"
    trace = report["counterexample"]
    assert trace[0]["action"] == "Init" and len(trace) == report["depth"] == 26
    assert trace[-1]["action"] == "BecomeLeader"
    assert {"servers", "messages"} <= set(trace[-1]["state"])
    assert mermaid.read_text().startswith("sequenceDiagram")


def test_violation_is_printed_as_a_numbered_table_of_changes() -> None:
    """The quorum mutant's 11-state counterexample (BFS's, tests/checker/test_checker_mutants.py)
    shows the rendering as well as the vote mutant's 26 states, which the JSON test above
    searches (a second search of that model cost CI some 12 s)."""
    proc = raftspec("check", str(MODELS_DIR / "mutant_quorum_off_by_one.yaml"))
    assert proc.returncode == 1
    assert "VIOLATION of election_safety after 11 states" in proc.stdout
    assert " 11  BecomeLeader(" in proc.stdout
    assert "role: Candidate → Leader" in proc.stdout


def test_bad_model_exits_2_naming_file_line_and_key(tmp_path) -> None:
    model = tmp_path / "typo.yaml"
    model.write_text("name: t\nservers: 2\nbounds: {max_term: 2, max_log_lenght: 1}\n")
    proc = raftspec("check", str(model))
    assert proc.returncode == 2
    assert f"{model}:3: bounds.max_log_lenght: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_model_file_exits_2() -> None:
    proc = raftspec("check", "no/such/model.yaml")
    assert proc.returncode == 2 and "no such model file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_explains_exit_codes() -> None:
    proc = raftspec("check", "--help")
    assert proc.returncode == 0 and "Exit status" in proc.stdout


def test_check_does_not_pay_for_other_commands_imports() -> None:
    code = (
        "import sys; from raftspec.cli import main; "
        f"code = main(['check', {TINY2!r}, '--quiet']); "
        "print(code, 'z3' in sys.modules, 'asyncio' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.splitlines()[-1] == "0 False False"
