"""End to end: record traces from a real local cluster under faults and validate them.

The same ``record`` regenerates the fixtures in tests/traces/data/:
``python tests/traces/test_validate_live.py tests/traces/data/SCENARIO SCENARIO``.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from raftspec.node.client import ClusterClient
from raftspec.node.supervisor import LocalCluster

SCENARIOS = ("faults", "partition", "restart")


async def _write(cluster: LocalCluster, keys: list[str], timeout: float = 10.0) -> None:
    async with ClusterClient(cluster.cluster_arg.split(","), cluster.secret) as c:
        s = c.session()
        for k in keys:
            await s.call("put", k, f"v-{k}", timeout=timeout)


def record(trace_dir: Path, scenario: str = "faults", n: int = 3, writes: int = 8) -> list[Path]:
    """Start n nodes with --trace-dir, drive a scenario, stop them cleanly; the trace files."""
    trace_dir.mkdir(parents=True, exist_ok=True)
    faults = "loss=0.05,dup=0.05,delay=1-8ms,reorder=0.1" if scenario == "faults" else None
    with tempfile.TemporaryDirectory() as data:
        cluster = LocalCluster(n, data, trace_dir=str(trace_dir), faults=faults)
        try:
            cluster.start()
            leader = cluster.wait_leader()
            asyncio.run(_write(cluster, [f"a{k}" for k in range(writes // 2)]))
            if scenario == "partition":
                others = [i for i in range(1, n + 1) if i != leader]
                cluster.partition([leader], others)
                cluster.wait_leader(others)
                asyncio.run(_write(cluster, [f"b{k}" for k in range(writes // 2)]))
                cluster.heal()
                time.sleep(0.5)
            elif scenario == "restart":
                cluster.kill(leader, signal.SIGTERM)
                others = [i for i in range(1, n + 1) if i != leader]
                cluster.wait_leader(others)
                asyncio.run(_write(cluster, [f"b{k}" for k in range(writes // 2)]))
                cluster.start([leader])
                time.sleep(0.6)
            else:
                asyncio.run(_write(cluster, [f"b{k}" for k in range(writes // 2)]))
                time.sleep(0.2)
        finally:
            cluster.stop()
    return sorted(trace_dir.glob("node-*.ndjson"))


@pytest.mark.parametrize("scenario", ["faults"])
def test_fresh_trace_from_a_live_cluster_under_faults_is_valid(tmp_path, scenario) -> None:
    paths = record(tmp_path / "traces", scenario)
    assert len(paths) == 3
    events = sum(len(p.read_text().splitlines()) for p in paths)
    assert events > 50
    result = subprocess.run([sys.executable, "-m", "raftspec", "validate", "--json",
                             *map(str, paths)], capture_output=True, text=True, timeout=120)
    verdict = json.loads(result.stdout)
    assert result.returncode == 0, verdict["first_unexplained"]
    assert verdict["valid"] and verdict["events"] == events
    _a_different_command_in_the_leaders_log_is_rejected(paths)


def _a_different_command_in_the_leaders_log_is_rejected(paths: list[Path]) -> None:
    """Entry values come from command hashes: change the hash of one command the leader
    appended and the entry it then replicates no longer matches its log."""
    for path in paths:
        lines = path.read_text().splitlines()
        for n, line in enumerate(lines):
            event = json.loads(line)
            if event["event"] == "client_request" and event.get("kind") == "command":
                event["hash"] = "0" * 8 if event["hash"] != "0" * 8 else "1" * 8
                lines[n] = json.dumps(event)
                path.write_text("\n".join(lines) + "\n")
                result = subprocess.run(
                    [sys.executable, "-m", "raftspec", "validate", "--json", *map(str, paths)],
                    capture_output=True, text=True, timeout=120)
                verdict = json.loads(result.stdout)
                assert result.returncode == 1 and not verdict["valid"]
                first = verdict["first_unexplained"]
                assert first["file"] == str(path) and first["line"] > n
                return
    raise AssertionError("the recorded run has no client command")


if __name__ == "__main__":
    out = Path(sys.argv[1])
    for path in record(out, sys.argv[2] if len(sys.argv) > 2 else "faults"):
        print(path, path.stat().st_size)
