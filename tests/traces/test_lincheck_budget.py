"""A budget can withhold a verdict (unknown) but never change one: whatever it stops, a history
called linearizable or not linearizable under a budget is called the same without one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from test_lincheck_properties import MODELS, simulate, small_histories

from raftspec.traces.lincheck import Operation, check_history


def _budgeted(ops: list[Operation], model: str, looks: int):
    asked = [0]

    def should_stop() -> str | None:
        asked[0] += 1
        return "budget" if asked[0] > looks else None

    return check_history(ops, model, should_stop=should_stop)


@given(small_histories(), st.integers(0, 4))
def test_a_budget_withholds_verdicts_but_never_changes_one(
        history: tuple[str, list[Operation]], looks: int) -> None:
    model, ops = history
    full = check_history(ops, model)
    partial = _budgeted(ops, model, looks)
    assert partial.linearizable in (full.linearizable, None)
    if partial.linearizable is None:
        assert partial.stopped == "budget" and partial.complete is False
        assert 1 <= partial.unknown_keys <= partial.keys
        assert partial.to_json()["verdict"] == "unknown"
    else:
        assert partial.complete and partial.stopped is None


@given(MODELS, st.data(), st.integers(0, 2))
def test_simulated_runs_are_linearizable_or_unknown_under_a_budget(
        model: str, data: st.DataObject, looks: int) -> None:
    ops = simulate(data, model)
    result = _budgeted(ops, model, looks)
    assert result.linearizable in (True, None)
    if result.linearizable is None:
        assert result.keys - result.unknown_keys <= looks + 1   # asked after each step
