"""``raftspec ctl`` and ``status`` as a user meets them: each action confirmed in one line,
arguments checked before anything is sent, a stopped cluster told at once, contract exit codes.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from raftspec.node.supervisor import free_base_port


def raftspec(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "raftspec", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _status(addrs: str) -> list[dict]:
    proc = raftspec("status", "--cluster", addrs, "--json")
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture
def running(tmp_path: Path):
    """`raftspec cluster --nodes 3` with a leader; SIGINT (and a wait) at the end."""
    base = free_base_port(3)
    out = open(tmp_path / "cluster.out", "w+")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "raftspec", "cluster", "--nodes", "3",
                             "--data-dir", str(tmp_path / "data"), "--base-port", str(base)],
                            stdout=out, stderr=subprocess.STDOUT)
    addrs = ",".join(f"127.0.0.1:{base + k}" for k in range(3))
    try:
        deadline = time.monotonic() + 30
        while "leader: node" not in (tmp_path / "cluster.out").read_text():
            assert time.monotonic() < deadline and proc.poll() is None, "no leader in 30 s"
            time.sleep(0.1)
        yield str(tmp_path / "data"), addrs
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()


def test_ctl_confirms_each_action_and_refuses_what_makes_no_sense(running) -> None:
    data, addrs = running
    rows = _status(addrs)
    leaders = [r for r in rows if r["role"] == "leader"]
    assert len(leaders) == 1
    assert all(r["leader"] in (leaders[0]["id"], None) for r in rows)
    assert any(r["leader"] == leaders[0]["id"] for r in rows if r["role"] == "follower")

    def ctl(*args: str) -> subprocess.CompletedProcess:
        return raftspec("ctl", "--data-dir", data, *args)

    proc = ctl("partition", "1", "2,3")
    assert (proc.returncode, proc.stdout) == (0, "partitioned: 1 | 2,3\n")
    proc = ctl("heal")
    assert (proc.returncode, proc.stdout) == (0, "healed every partition on node(s) 1, 2, 3\n")
    proc = ctl("faults", "none")
    assert (proc.returncode, proc.stdout) == (0, "faults set to none on node(s) 1, 2, 3\n")
    proc = ctl("restart", "2")                 # it is running: restarting it would do nothing
    assert proc.returncode == 2 and "node 2 is running" in proc.stderr
    proc = ctl("kill", "2")
    assert proc.returncode == 0 and proc.stdout.startswith("killed node 2 (pid ")
    proc = ctl("kill", "2")
    assert proc.returncode == 1 and "node 2" in proc.stderr and "does not answer" in proc.stderr
    proc = ctl("restart", "2")
    assert proc.returncode == 0 and proc.stdout.startswith("restarted node 2 (pid "), proc.stderr
    assert next(r for r in _status(addrs) if r["id"] == 2)["role"] != "unreachable"


@pytest.mark.parametrize("args, needle", [
    (["partition", "1,2", "2,3"], "must not overlap"),
    (["add-node", "9", "garbage"], "bad address 'garbage'"),
    (["add-node", "2", "127.0.0.1:9"], "already a member"),
    (["kill", "7"], "needs one node id"),
    (["faults", "loss=7"], "loss"),
])
def test_ctl_checks_its_arguments_before_sending_anything(args: list[str], needle: str) -> None:
    started = time.monotonic()
    proc = raftspec("ctl", "--cluster", "127.0.0.1:1,127.0.0.1:2,127.0.0.1:3", *args)
    assert proc.returncode == 2 and needle in proc.stderr, proc.stderr
    assert time.monotonic() - started < 10      # no waiting on a cluster that is not there


@pytest.mark.parametrize("args", [["heal"], ["kill", "1"], ["partition", "1", "2,3"],
                                  ["faults", "none"], ["restart", "1"], ["kill", "leader"]])
def test_a_stopped_cluster_is_reported_at_once_with_exit_1(tmp_path: Path,
                                                           args: list[str]) -> None:
    base = free_base_port(4)
    (tmp_path / "cluster.json").write_text(json.dumps({
        "nodes": {str(k + 1): f"127.0.0.1:{base + k}" for k in range(3)},
        "supervisor": f"127.0.0.1:{base + 3}"}))
    started = time.monotonic()
    proc = raftspec("ctl", "--data-dir", str(tmp_path), *args)
    assert proc.returncode == 1, proc.stderr
    assert "running?" in proc.stderr and "Traceback" not in proc.stderr
    assert time.monotonic() - started < 10       # the old ctl waited 25 s on `heal`


def test_raftspec_node_stops_with_exit_3_on_a_disk_error(tmp_path: Path) -> None:
    """`raftspec node --help` promises 3 for a fail-stop on a disk error (it was 2, the code
    of a user's mistake, through the CLI's generic NodeError handler). The failure is injected
    in the node's storage layer (control action "disk"); a write then needs the disk."""
    from raftspec.node import control

    addr = f"127.0.0.1:{free_base_port(1)}"
    proc = subprocess.Popen([sys.executable, "-m", "raftspec", "node", "--id", "1", "--peers",
                             addr, "--data-dir", str(tmp_path / "d")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not any(s.get("role") == "leader" for s in _status(addr)):
            assert time.monotonic() < deadline and proc.poll() is None, "no leader"
            time.sleep(0.2)
        assert control.control(addr, "disk", fail=True)
        put = raftspec("kv", "--cluster", addr, "--timeout", "2", "put", "k", "v")
        assert put.returncode != 0                 # never acknowledged: it was not persisted
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    assert "Traceback" not in err
    assert "error: cannot persist, stopping" in err.strip().splitlines()[-1]
