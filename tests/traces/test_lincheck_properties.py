"""Properties of the checker on generated histories.

Two independent sources of truth: histories produced by actually running a simulated store
(every operation takes effect at one instant inside its interval, so the history is linearizable
by construction), and a brute-force oracle that tries every order of a small history.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from raftspec.traces.lincheck import UNKNOWN, Operation, check_history, check_key

INF = math.inf
NEVER_WRITTEN = {"kv": "!", "register": 99}
MODELS = st.sampled_from(["kv", "register"])


def _apply(model: str, store: dict[Any, Any], f: str, key: Any, arg: Any) -> Any:
    """The simulated store: performs the operation now and returns its result."""
    current = store.get(key, "" if model == "kv" else None)
    if f in ("get", "read"):
        return current
    if f in ("put", "write"):
        store[key] = arg
        return None
    if f == "append":
        store[key] = current + arg
        return None
    swapped = current == arg[0]
    if swapped:
        store[key] = arg[1]
    return swapped


def _draw_call(data: st.DataObject, model: str, keys: list[Any], serial: int) -> tuple:
    key = data.draw(st.sampled_from(keys))
    if model == "kv":
        f = data.draw(st.sampled_from(["get", "put", "append"]))
        return f, key, None if f == "get" else f"v{serial};"
    f = data.draw(st.sampled_from(["read", "write", "cas"]))
    value = st.integers(0, 2)
    if f == "read":
        return f, key, None
    if f == "write":
        return f, key, data.draw(value)
    return f, key, (data.draw(st.none() | value), data.draw(value))


def simulate(data: st.DataObject, model: str, max_actions: int = 40) -> list[Operation]:
    """Clients invoke, the store applies each operation at some later instant, clients see the
    response later still; some operations fail before taking effect (dropped), some crash with an
    unknown outcome, applied or not (open)."""
    keys = data.draw(st.sampled_from([[None], ["a"], ["a", "b"], ["a", "b", "c"]]))
    if model == "kv":
        keys = [k or "a" for k in keys]
    processes = data.draw(st.integers(1, 4))
    store: dict[Any, Any] = {}
    running: dict[int, dict[str, Any]] = {}
    ops: list[Operation] = []
    next_process = processes
    idle = list(range(processes))
    for now in range(data.draw(st.integers(1, max_actions))):
        actions = ["invoke"] if idle else []
        actions += [f"{a}:{p}" for p, r in running.items()
                    for a in (("return", "crash") if r["applied"] else ("apply", "fail", "crash"))]
        if not actions:
            break
        action = data.draw(st.sampled_from(actions))
        if action == "invoke":
            process = idle.pop(0)
            f, key, arg = _draw_call(data, model, keys, now)
            running[process] = {"f": f, "key": key, "arg": arg, "call": now, "applied": False}
            continue
        name, process = action.split(":")[0], int(action.split(":")[1])
        r = running[process]
        if name == "apply":
            r["out"] = _apply(model, store, r["f"], r["key"], r["arg"])
            r["applied"] = True
            continue
        del running[process]
        if name == "return":
            ops.append(Operation(process, r["f"], r["key"], r["arg"], r["out"], r["call"], now,
                                 line=r["call"] + 1))
            idle.append(process)
        elif name == "crash":
            if not r["applied"] and data.draw(st.booleans()):
                _apply(model, store, r["f"], r["key"], r["arg"])  # took effect, unseen
            ops.append(Operation(process, r["f"], r["key"], r["arg"], UNKNOWN, r["call"], INF,
                                 line=r["call"] + 1))
            idle.append(next_process)  # like Jepsen: a crashed client gets a new process id
            next_process += 1
        else:  # fail: definitely did not take effect
            idle.append(process)
    for process, r in running.items():
        if r["applied"] or data.draw(st.booleans()):
            ops.append(Operation(process, r["f"], r["key"], r["arg"], UNKNOWN, r["call"], INF,
                                 line=r["call"] + 1))
    return ops


def brute_force(ops: list[Operation], model: str) -> bool:
    """Some order of all operations is legal for the model and respects real time."""
    for order in itertools.permutations(ops):
        if any(later.ret < earlier.call
               for i, earlier in enumerate(order) for later in order[i + 1:]):
            continue
        store: dict[Any, Any] = {}
        for op in order:
            before = store.get(op.key, "" if model == "kv" else None)
            result = _apply(model, store, op.f, op.key, op.arg)
            if op.out is UNKNOWN:
                continue
            if op.f in ("get", "read", "cas") and result != op.out:
                break
            if op.f == "cas" and not op.out:
                store[op.key] = before
        else:
            return True
    return False


@st.composite
def small_histories(draw: st.DrawFn) -> tuple[str, list[Operation]]:
    """Arbitrary small histories (results drawn at random, so often not linearizable)."""
    model = draw(MODELS)
    ops = []
    for process in range(draw(st.integers(1, 6))):
        key = draw(st.sampled_from(["a", "b"]))
        call = draw(st.integers(0, 8))
        ret = draw(st.one_of(st.integers(call, call + 6), st.just(INF)))
        if model == "kv":
            f = draw(st.sampled_from(["get", "put", "append"]))
            arg = None if f == "get" else draw(st.sampled_from(["x", "y"]))
            out = draw(st.sampled_from(["", "x", "y", "xy", "yx"])) if f == "get" else None
        else:
            f = draw(st.sampled_from(["read", "write", "cas"]))
            arg = {"read": None, "write": draw(st.integers(0, 1)),
                   "cas": (draw(st.none() | st.integers(0, 1)), draw(st.integers(0, 1)))}[f]
            out = {"read": draw(st.none() | st.integers(0, 1)), "write": None,
                   "cas": draw(st.booleans())}[f]
        if math.isinf(ret) and f in ("get", "read", "cas") and draw(st.booleans()):
            out = UNKNOWN
        ops.append(Operation(process, f, key, arg, out, call, ret, line=process + 1))
    return model, ops


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MODELS, st.data())
def test_histories_of_a_real_store_are_linearizable(model: str, data: st.DataObject) -> None:
    ops = simulate(data, model)
    assert check_history(ops, model).linearizable


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MODELS, st.data())
def test_reading_a_value_never_written_is_caught_on_its_key(model: str,
                                                            data: st.DataObject) -> None:
    ops = simulate(data, model)
    reads = [i for i, op in enumerate(ops) if op.f in ("get", "read") and op.out is not UNKNOWN]
    assume(reads)
    i = data.draw(st.sampled_from(reads))
    ops[i] = replace(ops[i], out=NEVER_WRITTEN[model])
    result = check_history(ops, model)
    assert not result.linearizable
    assert result.failing_keys == (ops[i].key,)
    assert result.failure is not None
    assert result.failure.culprit.ret != INF
    if result.failure.minimal:
        assert result.failure.culprit == ops[i]


@settings(max_examples=400, deadline=None)
@given(small_histories())
def test_verdict_matches_brute_force_with_and_without_partitioning(
        case: tuple[str, list[Operation]]) -> None:
    model, ops = case
    expected = brute_force(ops, model)
    assert check_history(ops, model).linearizable is expected
    assert check_history(ops, model, partition=False).linearizable is expected


@settings(max_examples=400, deadline=None)
@given(small_histories())
def test_failing_key_and_its_prefix_are_illegal_on_their_own(
        case: tuple[str, list[Operation]]) -> None:
    model, ops = case
    result = check_history(ops, model)
    assume(not result.linearizable)
    fail = result.failure
    assert fail is not None
    alone = [op for op in ops if op.key == fail.key]
    assert brute_force(alone, model) is False
    assert check_key(alone, model) is False
    assert len(fail.witness) == len(fail.prefix) and fail.culprit in fail.witness
    assert brute_force(list(fail.witness), model) is False
    if fail.minimal:
        relaxed = [replace(op, out=UNKNOWN, ret=INF) if op is fail.culprit else op
                   for op in fail.witness]
        assert brute_force(relaxed, model) is True


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MODELS, st.data())
def test_partitioned_and_whole_history_agree_on_simulated_runs(model: str,
                                                               data: st.DataObject) -> None:
    ops = simulate(data, model, max_actions=16)
    if data.draw(st.booleans()):
        reads = [i for i, op in enumerate(ops) if op.f in ("get", "read") and op.out is not UNKNOWN]
        assume(reads)
        i = data.draw(st.sampled_from(reads))
        ops[i] = replace(ops[i], out=NEVER_WRITTEN[model])
    assert (check_history(ops, model).linearizable
            is check_history(ops, model, partition=False).linearizable)
