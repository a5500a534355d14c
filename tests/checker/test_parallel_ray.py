"""``check --ray``: the sharded search on Ray actors (a local Ray instance of 2 CPUs) reports
what one worker reports, with states moved between actors to even out the levels. One Ray start
for the whole file: it takes seconds."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from unittest.mock import patch

import pytest

from raftspec.checker import parallel
from raftspec.cli import main

pytest.importorskip("ray", reason="Ray is not installed (pip install 'raftspec[ray]')")

QUORUM = Path(__file__).resolve().parents[2] / "spec" / "models" / "mutant_quorum_off_by_one.yaml"


def test_ray_shards_report_what_one_worker_reports(capsys: pytest.CaptureFixture) -> None:
    import ray

    assert main(["check", str(QUORUM), "--workers", "1", "--per-action", "--json",
                 "--quiet"]) == 1
    one = json.loads(capsys.readouterr().out)
    handlers_in_search = []
    run_sharded = parallel.run_sharded

    def recording(*args: object, **kwargs: object) -> object:
        handlers_in_search.append(signal.getsignal(signal.SIGTERM))
        return run_sharded(*args, **kwargs)

    # every level evened out (states given from actor to actor) whenever the shares differ
    with patch.object(parallel, "BALANCE_FROM", 1), patch.object(parallel, "BALANCE_SLACK", 0), \
            patch.object(parallel, "run_sharded", recording):
        assert main(["check", str(QUORUM), "--ray", "--workers", "2", "--per-action",
                     "--json", "--quiet"]) == 1
    two = json.loads(capsys.readouterr().out)
    assert not ray.is_initialized(), "the local Ray instance was not shut down"
    # SIGTERM (a CI job's timeout) still stops the search as Ctrl-C does: ray.init had replaced
    # the command's handler with one that aborted the process (exit 134)
    assert [h.__module__ for h in handlers_in_search] == ["raftspec.cli"]
    # the JSON's seconds count the search, not starting Ray (some 3-5 s here; the search 0.0x s)
    assert two["seconds"] < 2.0
    assert two["workers"] == 2
    assert one["violated"] == "election_safety" and len(one["counterexample"]) == 11
    for key in ("verdict", "distinct_states", "states_generated", "depth", "violated",
                "counterexample", "per_action", "complete", "stopped"):
        assert two[key] == one[key], key
