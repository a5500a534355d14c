"""Every subcommand, as a real process, against a table of user mistakes: the exit code is the
contract's (2 bad input or usage, 3 incomplete) and stderr never holds a traceback.

The processes run two at a time in a pool started by the first test that needs a result (the
machine has 2 cores); each parametrized case then waits for its own process. Every case fails
fast: bad input is refused before work, and the few that start work have short budgets.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

from raftspec.spec.model import MODELS_DIR

REPO = Path(__file__).resolve().parents[2]
TRACES = REPO / "tests" / "traces" / "data" / "faults"
TINY2 = MODELS_DIR / "conformance" / "tiny2.yaml"
DEFAULT = MODELS_DIR / "default.yaml"
TIMEOUT = 60

# Each case: id -> (argv with {placeholders} for files made by _files, expected exit codes).
CASES: dict[str, tuple[list[str], set[int]]] = {
    # the command line itself
    "no-command": ([], {2}),
    "unknown-command": (["nope"], {2}),
    "unknown-flag": (["check", "--no-such-flag"], {2}),
    # check
    "check-missing": (["check", "{missing}"], {2}),
    "check-empty": (["check", "{empty}"], {2}),
    "check-binary": (["check", "{binary}"], {2}),
    "check-truncated": (["check", "{truncated_yaml}"], {2}),
    "check-directory": (["check", "{dir}"], {2}),
    "check-wrong-type": (["check", "{wrong_type_yaml}"], {2}),
    "check-huge-bounds": (["check", "{huge_yaml}", "--time-limit", "1", "--json"], {3}),
    "check-mermaid-unwritable": (["check", "{tiny2}", "--mermaid", "{missing_dir}/x.mmd"], {2}),
    "check-mermaid-directory": (["check", "{tiny2}", "--mermaid", "{dir}"], {2}),
    "check-max-depth-0": (["check", "{tiny2}", "--max-depth", "0"], {2}),
    "check-max-states-0": (["check", "{tiny2}", "--max-states", "0"], {2}),
    "check-time-limit-negative": (["check", "{tiny2}", "--time-limit", "-1"], {2}),
    "check-max-memory-garbage": (["check", "{tiny2}", "--max-memory", "lots"], {2}),
    "check-unknown-flag": (["check", "{tiny2}", "--frobnicate"], {2}),
    # a user's variant whose own code raises while the model is explored
    "check-variant-enumerate-raises": (["check", "{variant_enumerate}"], {2}),
    "check-variant-invariant-raises": (["check", "{variant_invariant}"], {2}),
    "check-variant-step-property-raises": (["check", "{variant_step}"], {2}),
    "check-variant-reachable-raises": (["check", "{variant_reachable}"], {2}),
    "simulate-variant-invariant-raises": (["simulate", "{variant_invariant}", "--time-limit",
                                           "5"], {2}),
    # simulate
    "simulate-mermaid-unwritable": (["simulate", "{tiny2}", "--mermaid", "{missing_dir}/x.mmd"],
                                    {2}),
    "simulate-mermaid-directory": (["simulate", "{tiny2}", "--mermaid", "{dir}"], {2}),
    "simulate-time-limit-0": (["simulate", "{tiny2}", "--time-limit", "0"], {2}),
    # accepted before, and --json then printed "time_limit": Infinity, not JSON
    "simulate-time-limit-inf": (["simulate", "{tiny2}", "--time-limit", "inf", "--json"], {2}),
    "simulate-time-limit-nan": (["simulate", "{tiny2}", "--time-limit", "nan", "--json"], {2}),
    # matrix
    "matrix-missing": (["matrix", "{tiny2}", "{missing}"], {2}),
    "matrix-time-limit-negative": (["matrix", "{tiny2}", "--time-limit", "-1"], {2}),
    "matrix-huge-bounds": (["matrix", "{huge_yaml}", "--time-limit", "1", "--json"], {3}),
    # bmc
    "bmc-missing": (["bmc", "{missing}"], {2}),
    "bmc-empty": (["bmc", "{empty}"], {2}),
    "bmc-binary": (["bmc", "{binary}"], {2}),
    "bmc-truncated": (["bmc", "{truncated_yaml}"], {2}),
    "bmc-wrong-type": (["bmc", "{wrong_type_yaml}"], {2}),
    "bmc-huge-bounds": (["bmc", "{huge_yaml}", "--depth", "3"], {2}),
    "bmc-depth-0": (["bmc", "{default}", "--depth", "0"], {2}),
    "bmc-depth-not-a-number": (["bmc", "{default}", "--depth", "ten"], {2}),
    "bmc-time-budget-negative": (["bmc", "{default}", "--time-budget", "-1"], {2}),
    "bmc-unknown-engine": (["bmc", "{default}", "--engine", "minisat"], {2}),
    "bmc-unknown-property": (["bmc", "{default}", "--invariant", "nope"], {2}),
    # induct
    "induct-missing": (["induct", "{missing}", "--invariant", "election_safety"], {2}),
    "induct-binary": (["induct", "{binary}", "--invariant", "election_safety"], {2}),
    "induct-huge-bounds": (["induct", "{huge_yaml}", "--invariant", "election_safety"], {2}),
    "induct-no-invariant": (["induct", "{default}"], {2}),
    "induct-k-0": (["induct", "{default}", "--invariant", "election_safety", "--k", "0"], {2}),
    "induct-unknown-lemma": (["induct", "{default}", "--invariant", "log_matching", "--with",
                              "nope"], {2}),
    # validate
    "validate-missing": (["validate", "{missing}"], {2}),
    "validate-empty": (["validate", "{empty}"], {2}),
    "validate-binary": (["validate", "{binary}"], {2}),
    "validate-truncated-line": (["validate", "{trace1_cut_mid}", "{trace2}", "{trace3}"], {2}),
    "validate-wrong-type": (["validate", "{wrong_type_json}"], {2}),
    "validate-directory": (["validate", "{dir}"], {2}),
    "validate-one-node-only": (["validate", "{trace1}"], {2}),
    "validate-file-twice": (["validate", "{trace1}", "{trace1}", "{trace2}", "{trace3}"], {2}),
    "validate-node-twice": (["validate", "{trace1}", "{trace1_copy}", "{trace2}", "{trace3}"],
                            {2}),
    "validate-model-binary": (["validate", "{trace1}", "--model", "{binary}"], {2}),
    "validate-time-limit-0": (["validate", "{trace1}", "--time-limit", "0"], {2}),
    "validate-corrupt-gzip": (["validate", "{corrupt_gz}", "{trace2}", "{trace3}"], {2}),
    "validate-truncated-gzip": (["validate", "{truncated_gz}", "{trace2}", "{trace3}"], {2}),
    "validate-etcd-corrupt-gzip": (["validate", "{etcd_corrupt_gz}"], {2}),
    "validate-deep-json": (["validate", "{trace1_deep}", "{trace2}", "{trace3}"], {2}),
    # lincheck
    "lincheck-missing": (["lincheck", "{missing}"], {2}),
    "lincheck-binary": (["lincheck", "{binary}"], {2}),
    "lincheck-truncated-line": (["lincheck", "{history_cut_mid}"], {2}),
    "lincheck-wrong-type": (["lincheck", "{wrong_type_history}"], {2}),
    "lincheck-directory": (["lincheck", "{dir}"], {2}),
    "lincheck-huge": (["lincheck", "{hard_history}", "--time-limit", "1", "--json"], {3}),
    "lincheck-html-unwritable": (["lincheck", "{history}", "--html", "{missing_dir}/r.html"],
                                 {2}),
    "lincheck-html-directory": (["lincheck", "{history}", "--html", "{dir}"], {2}),
    "lincheck-unknown-format": (["lincheck", "{history}", "--format", "csv"], {2}),
    # the cluster commands (nothing here reaches a running node)
    "cluster-data-dir-is-a-file": (["cluster", "--data-dir", "{empty}"], {2}),
    "cluster-trace-dir-is-a-file": (["cluster", "--data-dir", "{new_dir}", "--trace-dir",
                                     "{empty}"], {2}),
    "cluster-zero-nodes": (["cluster", "--nodes", "0", "--data-dir", "{new_dir}"], {2}),
    "cluster-bad-faults": (["cluster", "--data-dir", "{new_dir}", "--faults", "loss=2"], {2}),
    "node-trace-unwritable": (["node", "--id", "1", "--peers", "127.0.0.1:1", "--data-dir",
                               "{new_dir}", "--trace", "{missing_dir}/t.ndjson"], {2}),
    "node-data-dir-is-a-file": (["node", "--id", "1", "--peers", "127.0.0.1:1", "--data-dir",
                                 "{empty}"], {2}),
    "node-bad-peers": (["node", "--id", "1", "--peers", "garbage", "--data-dir", "{new_dir}"],
                       {2}),
    "kv-history-unwritable": (["kv", "--cluster", "127.0.0.1:1", "--history",
                               "{missing_dir}/h.ndjson", "get", "k"], {2}),
    "kv-put-without-value": (["kv", "--cluster", "127.0.0.1:1", "put", "k"], {2}),
    "kv-bad-cluster": (["kv", "--cluster", "nowhere", "get", "k"], {2}),
    "status-bad-cluster": (["status", "--cluster", "nowhere"], {2}),
    "status-no-cluster": (["status"], {2}),
    "ctl-no-manifest": (["ctl", "--data-dir", "{new_dir}", "heal"], {2}),
    "ctl-binary-manifest": (["ctl", "--data-dir", "{binary_manifest_dir}", "heal"], {2}),
    "ctl-truncated-manifest": (["ctl", "--data-dir", "{truncated_manifest_dir}", "heal"], {2}),
    "ctl-wrong-type-manifest": (["ctl", "--data-dir", "{wrong_type_manifest_dir}", "heal"], {2}),
    # JSON nested deeper than Python's recursion limit (before: RecursionError, exit 4)
    "ctl-deep-manifest": (["ctl", "--data-dir", "{deep_manifest_dir}", "heal"], {2}),
    "ctl-overlapping-groups": (["ctl", "--cluster", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3",
                                "partition", "1,2", "2,3"], {2}),
    "ctl-bad-address": (["ctl", "--cluster", "127.0.0.1:1", "add-node", "9", "garbage"], {2}),
    "ctl-unknown-node": (["ctl", "--cluster", "127.0.0.1:1", "kill", "7"], {2}),
    "ctl-unknown-action": (["ctl", "--cluster", "127.0.0.1:1", "explode"], {2}),
}

MESSAGES: dict[str, tuple[str, ...]] = {
    "validate-corrupt-gzip": ("not a valid gzip file: ", "corrupt.ndjson.gz"),
    "validate-truncated-gzip": ("not a valid gzip file: ", "truncated.ndjson.gz", "cut short"),
    "validate-etcd-corrupt-gzip": ("not a valid gzip file: ", "etcd.ndjson.gz",
                                   "invalid block type"),
    "check-variant-enumerate-raises": ("enumerate.py: enumerate of action Timeout raised "
                                       "ValueError: bad enumerate (at ", "enumerate.py:3)"),
    "check-variant-invariant-raises": ("invariant.py: invariant boom raised AttributeError",
                                       "invariant.py:2)"),
    "check-variant-step-property-raises": ("step.py: step property jump raised KeyError",),
    "check-variant-reachable-raises": ("reachable.py: reachability property seen raised "
                                       "ZeroDivisionError",),
    "simulate-variant-invariant-raises": ("invariant.py: invariant boom raised AttributeError",),
    "simulate-mermaid-unwritable": ("--mermaid: cannot write: directory ",),
    "matrix-time-limit-negative": ("--time-limit: must be a positive number of seconds",),
}
"""What the one error line of some cases must say (every fragment, in the last stderr line)."""

VARIANTS = {
    "enumerate": ("def bad(state, config):\n    yield (1,)\n    raise ValueError('bad enumerate')"
                  "\n\ndef edit(p):\n    return p.replace('Timeout', enumerate=bad)\n", ""),
    "invariant": ("def boom(state, config):\n    return state.no_such_field\n\n"
                  "def edit(p):\n    return p.with_properties(invariants={'boom': boom})\n",
                  "invariants: [type_ok, boom]\n"),
    "step": ("def jump(state, nxt, config):\n    return {}['x']\n\n"
             "def edit(p):\n    return p.with_properties(step_properties={'jump': jump})\n",
             "invariants: [type_ok, jump]\n"),
    "reachable": ("def seen(state, config):\n    return 1 / 0\n\n"
                  "def edit(p):\n    return p.with_properties(reachable={'seen': seen})\n",
                  "reachable: [seen]\n"),
}
"""Variant files whose own code raises once the model runs: (source, extra model lines)."""


def _files(root: Path) -> dict[str, str]:
    """The bad (and a few good) inputs the table refers to."""
    def write(name: str, data: bytes | str) -> str:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            data = data.encode()
        path.write_bytes(data)
        return str(path)

    trace = {k: (TRACES / f"node-{k}.ndjson").read_text() for k in (1, 2, 3)}
    lines1 = trace[1].splitlines()
    history = "\n".join(json.dumps(o) for o in [
        {"process": 1, "type": "invoke", "f": "put", "key": "k", "value": "a", "time": 1},
        {"process": 1, "type": "ok", "f": "put", "key": "k", "value": "a", "time": 2},
        {"process": 2, "type": "invoke", "f": "get", "key": "k", "value": None, "time": 3},
        {"process": 2, "type": "ok", "f": "get", "key": "k", "value": "a", "time": 4}]) + "\n"
    (root / "a-dir").mkdir()
    packed = gzip.compress(trace[1].encode())
    etcd = "".join(json.dumps({"tag": "log", "event": {"name": "Ready", "nid": "1"}, "n": n})
                   + "\n" for n in range(200)).encode()
    second = gzip.compress(etcd)   # a second gzip member whose deflate data is garbage (zlib's
    etcd_bad = gzip.compress(etcd) + second[:10] + b"\xff" * 16 + second[26:]  # "invalid block
    # type"), after a first member that is read as etcd-raft's (its first line says so)
    variants = {}
    for name, (source, lines) in VARIANTS.items():
        write(f"variants/{name}.py", source)
        variants[f"variant_{name}"] = write(
            f"variants/{name}.yaml", f"name: {name}\nservers: 2\nbounds: {{max_term: 2, "
            f"max_log_length: 1, max_messages: 1}}\nvariant: {name}.py\n{lines}")
    return {
        **variants,
        "corrupt_gz": write("gz/corrupt.ndjson.gz", packed[:20] + bytes(200) + packed[220:]),
        "truncated_gz": write("gz/truncated.ndjson.gz", packed[:len(packed) // 2]),
        "etcd_corrupt_gz": write("gz/etcd.ndjson.gz", etcd_bad),
        "missing": str(root / "no-such-file"),
        "missing_dir": str(root / "no-such-dir"),
        "new_dir": str(root / "new-dir"),
        "dir": str(root / "a-dir"),
        "empty": write("empty", b""),
        "binary": write("binary", bytes(range(256)) * 8),
        "truncated_yaml": write("truncated.yaml", DEFAULT.read_text()[:120]),
        "wrong_type_yaml": write("wrong.yaml", "name: x\nservers: three\n"),
        "huge_yaml": write("huge.yaml", "name: huge\nservers: 3\nbounds: {max_term: 1000000, "
                           "max_log_length: 1, max_messages: 1}\ninvariants: [election_safety]\n"),
        "tiny2": str(TINY2),
        "default": str(DEFAULT),
        "trace1": write("t/node-1.ndjson", trace[1]),
        "trace2": write("t/node-2.ndjson", trace[2]),
        "trace3": write("t/node-3.ndjson", trace[3]),
        "trace1_copy": write("copy/node-1.ndjson", trace[1]),
        "trace1_cut_mid": write("cut/node-1.ndjson", "\n".join(
            lines1[:3] + [lines1[3][:40]] + lines1[4:]) + "\n"),
        "wrong_type_json": write("wrong.ndjson", '{"v": 1, "node": "one", "seq": 1}\n'),
        "trace1_deep": write("deep/node-1.ndjson", "\n".join(
            lines1[:3] + ["[" * 100_000] + lines1[3:]) + "\n"),
        "history": write("h.ndjson", history),
        "history_cut_mid": write("cut.ndjson", history[:150] + "\n" + history[150:]),
        "wrong_type_history": write("wrong-h.ndjson", '{"process": "p", "type": 5}\n'),
        "hard_history": write("hard.ndjson", hard_history(13)),
        "binary_manifest_dir": str(Path(write("mb/cluster.json", bytes(range(256)))).parent),
        "truncated_manifest_dir": str(Path(write("mt/cluster.json", '{"nodes": {"1": "127')
                                           ).parent),
        "wrong_type_manifest_dir": str(Path(write("mw/cluster.json", '{"nodes": [1, 2]}')
                                            ).parent),
        "deep_manifest_dir": str(Path(write("md/cluster.json", '{"nodes": ' + "[" * 100_000)
                                      ).parent),
    }


def hard_history(n: int) -> str:
    """n concurrent appends then a read no order explains: the WGL search must try every
    subset before it can say so (2^n memo entries), so it is long but legal input."""
    ops = [{"process": p, "type": "invoke", "f": "append", "key": "k", "value": f"<{p}>",
            "time": p} for p in range(n)]
    ops += [{"process": p, "type": "ok", "f": "append", "key": "k", "value": f"<{p}>",
             "time": 1000 + p} for p in range(n)]
    ops += [{"process": n, "type": "invoke", "f": "get", "key": "k", "value": None,
             "time": 2000},
            {"process": n, "type": "ok", "f": "get", "key": "k", "value": "impossible",
             "time": 2001}]
    return "\n".join(json.dumps(o) for o in ops) + "\n"


def raftspec_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "raftspec", *args]


def _run(argv: list[str], cwd: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, CI="1")
    return subprocess.run(raftspec_argv(*argv), capture_output=True, text=True, cwd=cwd,
                          timeout=TIMEOUT, stdin=subprocess.DEVNULL, env=env)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("bad-inputs")
    files = _files(root)
    pool = ThreadPoolExecutor(max_workers=2)
    futures: dict[str, Future] = {
        name: pool.submit(_run, [a.format(**files) for a in argv], str(root))
        for name, (argv, _) in CASES.items()}
    yield futures, files
    pool.shutdown(wait=True, cancel_futures=True)
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("case", list(CASES))
def test_user_mistake_exits_with_the_contract_code_and_no_traceback(case: str, results) -> None:
    futures, _ = results
    proc = futures[case].result(timeout=TIMEOUT * 3)
    expected = CASES[case][1]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode in expected, (proc.returncode, proc.stderr)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    if proc.returncode == 2:
        assert "error" in last, proc.stderr       # one clear line saying what is wrong
    if 3 in expected and "--json" in CASES[case][0]:
        report = json.loads(proc.stdout.splitlines()[-1])
        assert report["complete"] is False and report.get("stopped"), report


@pytest.mark.parametrize("case", list(MESSAGES))
def test_the_error_line_names_the_file_and_the_problem(case: str, results) -> None:
    futures, _ = results
    proc = futures[case].result(timeout=TIMEOUT * 3)
    last = proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else ""
    for fragment in MESSAGES[case]:
        assert fragment in last, proc.stderr


def test_an_unexpected_exception_is_one_line_and_exit_4_never_a_verdict(tmp_path: Path) -> None:
    """A bug in raftspec (here: one planted in the model loader of a real process) is neither
    a finding (1) nor a user's mistake (2): exit 4, one line naming the exception, no
    traceback."""
    plant = ("import sys\nimport raftspec.commands.check as check\n"
             "def broken(path):\n    raise LookupError('planted')\n"
             "check.load_model = broken\nfrom raftspec.cli import main\n"
             "sys.exit(main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", plant, "check", str(TINY2)],
                          capture_output=True, text=True, timeout=TIMEOUT,
                          stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("raftspec check: internal error: LookupError: planted (at ")
    assert "this is a bug in raftspec: please report it" in lines[0]


@pytest.mark.parametrize("command", ["check", "simulate", "matrix", "bmc", "induct",
                                     "validate", "lincheck", "node"])
def test_every_verdict_command_documents_exit_3_and_4(
        command: str, capsys: pytest.CaptureFixture[str]) -> None:
    from raftspec.cli import build_parser

    with pytest.raises(SystemExit) as exited:
        build_parser(f"raftspec.commands.{command}").parse_args([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert exited.value.code == 0
    assert ("3 fail-stop on a disk error" if command == "node" else "3 incomplete") in text, text
    assert "4 an internal error" in text, text


def test_a_file_that_exists_is_never_created_or_truncated_by_the_output_check(results) -> None:
    """--mermaid/--html are checked by opening for append: nothing is written before a result."""
    _, files = results
    assert not Path(files["missing_dir"]).exists()
    assert Path(files["empty"]).read_bytes() == b""


@pytest.mark.parametrize("argv, code", [
    (["validate", *[str(TRACES / f"node-{k}.ndjson") for k in (1, 2, 3)]], 0),
    (["check", str(TINY2)], 0),
    (["induct", str(DEFAULT), "--invariant", "election_safety", "--quiet"], 1),
])
def test_a_reader_that_stops_reading_changes_neither_the_exit_code_nor_adds_a_traceback(
        argv: list[str], code: int) -> None:
    """`| head -0`: the pipe's reader is gone before the first line; the command still
    finishes with its verdict's exit code."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run(raftspec_argv(*argv), stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=TIMEOUT, stdin=subprocess.DEVNULL)
    finally:
        os.close(write)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == code, proc.stderr


def test_head_dash_1_on_many_lines(tmp_path: Path) -> None:
    """A real `raftspec lincheck ... | head -1` over many histories."""
    history = tmp_path / "h.ndjson"
    history.write_text(json.dumps({"process": 1, "type": "invoke", "f": "put", "key": "k",
                                   "value": "a", "time": 1}) + "\n"
                       + json.dumps({"process": 1, "type": "ok", "f": "put", "key": "k",
                                     "value": "a", "time": 2}) + "\n")
    proc = subprocess.run(
        ["bash", "-c", 'set -o pipefail; "$@" | head -1; exit "${PIPESTATUS[0]}"', "bash",
         *raftspec_argv("lincheck", *[str(history)] * 3000)],
        capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.stdout.count("\n") == 1 and "linearizable" in proc.stdout
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr
    assert proc.returncode == 0, proc.stderr
