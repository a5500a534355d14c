"""Mutation suite: valid traces recorded from the real cluster under faults are accepted, and
every mutant of them (a term, a vote, a commit index changed; two events of a node swapped; a
receive dropped; a second leader in a term) is rejected at or just after the mutated event.

Fixtures: tests/traces/data/<scenario>/node-*.ndjson, recorded with
``python tests/traces/test_validate_live.py DIR SCENARIO`` (faults: loss, duplication, delay and
reordering; partition: the leader isolated, a new leader elected, then healed; restart: the
leader stopped, a new one elected, the old one restarted).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from raftspec.traces.validate import ClusterAdapter, validate
from raftspec.traces.validate.adapter import Event
from raftspec.traces.validate.cluster import link_update_terms

DATA = Path(__file__).parent / "data"
SCENARIOS = sorted(p.name for p in DATA.iterdir() if p.is_dir())
PER_KIND = 6            # mutants of each kind per scenario, spread over the trace
WINDOW = 2              # "just after": up to this many later events of the same node

Files = list[list[dict]]


def load(scenario: str) -> tuple[list[str], Files]:
    paths = sorted(str(p) for p in (DATA / scenario).glob("node-*.ndjson"))
    return paths, [[json.loads(line) for line in open(p)] for p in paths]


def run(paths: list[str], files: Files):
    """Validate in-memory event lists as if they had been read from ``paths``."""
    adapter = ClusterAdapter()
    lists = []
    for path, objs in zip(paths, files, strict=True):
        events = [adapter._event(obj, path, n) for n, obj in enumerate(objs, 1)]
        link_update_terms(events)
        lists.append(events)
    return validate(lists, adapter)


def renumber(files: Files) -> None:
    """After inserting, deleting or moving lines: seq = line number again, each send's id =
    node:seq, and every receive renamed to follow its send."""
    renamed: dict[str, str] = {}
    for objs in files:
        for n, obj in enumerate(objs, 1):
            obj["seq"] = n
            if obj["event"] == "send":
                new = f"{obj['node']}:{n}"
                renamed[obj["msg"]["id"]] = new
                obj["msg"] = dict(obj["msg"], id=new)
    for objs in files:
        for obj in objs:
            if obj["event"] == "recv" and obj["msg"]["id"] in renamed:
                obj["msg"] = dict(obj["msg"], id=renamed[obj["msg"]["id"]])


def spread(items: list, k: int = PER_KIND) -> list:
    if len(items) <= k:
        return items
    return [items[round(j * (len(items) - 1) / (k - 1))] for j in range(k)]


# Each mutation: (files) -> list of mutants, each (mutated files, file index, line) where line is
# the (1-based, after mutation) line of the mutated event.
Mutant = tuple[Files, int, int]


def _positions(files: Files, pred: Callable[[dict], bool]) -> list[tuple[int, int]]:
    return spread([(f, n) for f, objs in enumerate(files) for n, o in enumerate(objs) if pred(o)])


def change_term(files: Files) -> list[Mutant]:
    out = []
    for f, n in _positions(files, lambda o: o["event"] != "init"):
        m = copy.deepcopy(files)
        m[f][n]["term"] += 1
        out.append((m, f, n + 1))
    return out


def change_vote(files: Files) -> list[Mutant]:
    """Flip a granted vote in a vote response, or name another candidate in voted_for."""
    out = []
    for f, n in _positions(files, lambda o: o["event"] == "send" and o["msg"]["type"]
                           == "vote_resp"):
        m = copy.deepcopy(files)
        m[f][n]["msg"]["granted"] = not m[f][n]["msg"]["granted"]
        out.append((m, f, n + 1))
    for f, n in _positions(files, lambda o: o["voted_for"] is not None and o["event"] != "init"):
        m = copy.deepcopy(files)
        others = [k for k in range(1, len(files) + 1) if k != m[f][n]["voted_for"]]
        m[f][n]["voted_for"] = others[0]
        out.append((m, f, n + 1))
    return out


def change_commit(files: Files) -> list[Mutant]:
    out = []
    for f, n in _positions(files, lambda o: o["event"] in ("recv", "advance_commit")
                           and o["commit_index"] > 0):
        for delta in (1, -1):
            m = copy.deepcopy(files)
            m[f][n]["commit_index"] += delta
            out.append((m, f, n + 1))
    return out


_STATE = ("term", "role", "voted_for", "log_len", "last_log_term", "commit_index")


def swap_events(files: Files) -> list[Mutant]:
    """Swap two adjacent events of one node whose logged states differ (swapping two that
    leave the same state, e.g. two heartbeats, is not a different run)."""
    out = []
    for f, n in _positions(files, lambda o: True):
        objs = files[f]
        k = next((k for k in range(n, len(objs) - 1)
                  if [objs[k][x] for x in _STATE] != [objs[k + 1][x] for x in _STATE]), None)
        if k is None:
            continue
        m = copy.deepcopy(files)
        m[f][k], m[f][k + 1] = m[f][k + 1], m[f][k]
        renumber(m)
        out.append((m, f, k + 1))
    return out


def drop_receive(files: Files) -> list[Mutant]:
    """Delete the receive of a request: the node then answers a request it never got."""
    out = []
    for f, n in _positions(files, lambda o: o["event"] == "recv"
                           and o["msg"]["type"] in ("vote", "append")):
        m = copy.deepcopy(files)
        del m[f][n]
        renumber(m)
        # A receive of a higher term is logged in two halves, update_term then recv: without
        # the recv, the update_term just before it has no message to come from.
        first = n if n > 0 and m[f][n - 1]["event"] == "update_term" else n + 1
        out.append((m, f, first))      # (1-based) the update_term, or the event now in its place
    return out


def second_leader(files: Files) -> list[Mutant]:
    """A follower of a term in which another node leads also claims leadership."""
    leaders = {(o["term"], o["node"]) for objs in files for o in objs
               if o["event"] == "become_leader"}
    led = {t: node for t, node in leaders}
    out = []
    for f, n in _positions(files, lambda o: o["role"] == "follower" and o["term"] in led
                           and led[o["term"]] != o["node"]):
        m = copy.deepcopy(files)
        claim = dict(m[f][n], event="become_leader", role="leader")
        claim.pop("msg", None)
        claim.pop("from_role", None)
        m[f].insert(n + 1, claim)
        renumber(m)
        out.append((m, f, n + 2))
    return out


MUTATIONS = {
    "change_term": change_term,
    "change_vote": change_vote,
    "change_commit": change_commit,
    "swap_events": swap_events,
    "drop_receive": drop_receive,
    "second_leader": second_leader,
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_recorded_traces_are_valid(scenario: str) -> None:
    paths, files = load(scenario)
    verdict = run(paths, files)
    assert verdict.valid, verdict.to_json()["first_unexplained"]
    assert verdict.events == sum(map(len, files))
    assert verdict.steps > 0


@pytest.mark.parametrize("kind", sorted(MUTATIONS))
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_mutant_is_rejected_at_or_just_after_the_mutation(scenario: str, kind: str) -> None:
    paths, files = load(scenario)
    mutants = MUTATIONS[kind](files)
    assert mutants, f"no place to apply {kind} in {scenario}"
    for mutated, f, line in mutants:
        verdict = run(paths, mutated)
        assert not verdict.valid, (kind, paths[f], line)
        at: Event = verdict.event
        assert at.file == paths[f] and line <= at.line <= line + WINDOW, (
            kind, f"mutated {paths[f]}:{line}", f"rejected at {at.file}:{at.line}")
        assert verdict.candidates and all("failed" in c for c in verdict.candidates)


def test_the_suite_covers_the_three_fault_scenarios() -> None:
    assert SCENARIOS == ["faults", "partition", "restart"]
    _, files = load("faults")
    received = [o["msg"]["id"] for objs in files for o in objs if o["event"] == "recv"]
    sent = [o["msg"]["id"] for objs in files for o in objs if o["event"] == "send"]
    assert set(sent) - set(received), "the faults trace should lose some messages"
    assert len(received) > len(set(received)), "the faults trace should duplicate some"
