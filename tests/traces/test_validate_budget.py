"""The validation search honours a time or memory budget (``should_stop``) within about a
second wherever its time goes, even inside one event; and a search too wide to run is refused
naming where the candidates came from (the adapter's initial states, one event's explanations,
or the adapter's unlogged steps)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import attrs
import pytest

from raftspec.cli import main
from raftspec.protocol.errors import RaftspecError
from raftspec.traces.validate import search
from raftspec.traces.validate.adapter import Attempt, Event

SLOW = 0.001           # seconds per initial state, unlogged step or attempt
MANY = 8000            # so 8 s of work in one place


@attrs.define
class Toy:
    """Candidates are ints; each event is explained from every candidate in ``ways`` ways."""

    name = "toy"
    initial_states: int = 1
    ways: int = 1
    silent_chain: int = 0          # unlogged steps: n -> n + 1 up to this
    slow: str = ""                 # "initial", "silent" or "attempts": sleep SLOW in each

    def _work(self, where: str) -> None:
        if self.slow == where:
            time.sleep(SLOW)

    def initial(self, events):
        for k in range(self.initial_states):
            self._work("initial")
            yield k

    def attempts(self, event, candidate):
        self._work("attempts")
        return [Attempt("Step", (), candidate * self.ways + k) for k in range(self.ways)]

    def silent(self, candidate):
        self._work("silent")
        return [(candidate + 1, 1)] if candidate < self.silent_chain else []

    def describe(self, candidate):
        return [str(candidate)], {"n": candidate}


def _events(n: int = 1) -> list[list[Event]]:
    return [[Event("toy.log", k, 1, {}) for k in range(1, n + 1)]]


def _deadline(seconds: float):
    end = time.perf_counter() + seconds
    return lambda: "time limit" if time.perf_counter() >= end else None


@pytest.mark.parametrize("adapter", [
    Toy(initial_states=MANY, slow="initial"),
    Toy(silent_chain=MANY, slow="silent"),
    Toy(initial_states=MANY, slow="attempts"),
], ids=("initial-states", "unlogged-steps", "one-event-of-many-candidates"))
def test_a_budget_stops_the_search_within_a_second_wherever_its_time_goes(adapter) -> None:
    started = time.perf_counter()
    verdict = search.validate(_events(), adapter, should_stop=_deadline(0.3))
    assert (verdict.complete, verdict.stopped, verdict.validated) == (False, "time limit", 0)
    assert time.perf_counter() - started < 4   # of 8 s: stopped, with room for a loaded CI


def test_time_limit_stops_a_slow_user_adapter_with_exit_3(tmp_path: Path, capsys) -> None:
    adapter = tmp_path / "slow_adapter.py"
    adapter.write_text(textwrap.dedent(f'''
        import time
        from raftspec.traces.validate.adapter import Attempt, Event

        class Slow:
            name = "slow"
            def read(self, path):
                return [Event(path, 1, 1, {{}})]
            def initial(self, events):
                return range({MANY})
            def attempts(self, event, candidate):
                time.sleep({SLOW})
                return [Attempt("Step", (), candidate)]
            def silent(self, candidate):
                return ()
            def describe(self, candidate):
                return [str(candidate)], {{}}

        def make_adapter():
            return Slow()
        '''))
    trace = tmp_path / "run.log"
    trace.write_text("one event\n")
    started = time.perf_counter()
    assert main(["validate", "--adapter", str(adapter), "--time-limit", "0.5", str(trace)]) == 3
    assert time.perf_counter() - started < 4   # of 8 s: stopped, with room for a loaded CI
    assert "INCOMPLETE (time limit of 0.5 s reached)" in capsys.readouterr().out


@pytest.mark.parametrize(("adapter", "events", "text"), [
    (Toy(initial_states=11), 1,
     "more than 10 initial candidate states (the toy adapter's initial states)"),
    (Toy(initial_states=3, ways=2), 3,
     "toy.log:2: more than 10 candidate states explain this event (6 before it): too many"),
    (Toy(silent_chain=10), 1, "toy.log:1: more than 10 candidate states explain this event "
     "(1 before it, 11 after the toy adapter's unlogged steps): too many"),
], ids=("initial-states", "explanations", "unlogged-steps"))
def test_too_many_candidates_is_refused_naming_where_they_came_from(
        adapter, events, text, monkeypatch) -> None:
    monkeypatch.setattr(search, "MAX_CANDIDATES", 10)
    with pytest.raises(RaftspecError) as err:
        search.validate(_events(events), adapter)
    assert text in str(err.value)
    if adapter.silent_chain == 0:
        assert "unlogged" not in str(err.value)
