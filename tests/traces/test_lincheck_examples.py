"""Classic small histories whose verdicts follow from the definition (Herlihy & Wing)."""

from __future__ import annotations

import math

import pytest

from raftspec.traces.lincheck import UNKNOWN, Operation, check_history, parse

INF = math.inf


def kv(process: int, f: str, key: str, arg: str | None, out: object, call: float,
       ret: float) -> Operation:
    return Operation(process, f, key, arg, out, call, ret, line=int(call) + 1)


def reg(process: int, f: str, arg: object, out: object, call: float, ret: float) -> Operation:
    return Operation(process, f, None, arg, out, call, ret, line=int(call) + 1)


def test_stale_read_after_a_completed_write_is_not_linearizable() -> None:
    ops = [kv(0, "put", "x", "1", None, 0, 1), kv(1, "get", "x", None, "", 2, 3)]
    result = check_history(ops, "kv")
    assert not result.linearizable
    assert result.failure is not None
    assert result.failure.key == "x"
    assert result.failure.culprit == ops[1]


@pytest.mark.parametrize("seen", ["", "1"])
def test_read_concurrent_with_a_write_may_see_either_value(seen: str) -> None:
    ops = [kv(0, "put", "x", "1", None, 0, 3), kv(1, "get", "x", None, seen, 1, 2)]
    assert check_history(ops, "kv").linearizable


def test_read_concurrent_with_a_write_cannot_see_a_value_never_written() -> None:
    ops = [kv(0, "put", "x", "1", None, 0, 3), kv(1, "get", "x", None, "2", 1, 2)]
    assert not check_history(ops, "kv").linearizable


@pytest.mark.parametrize(("first", "second", "ok"), [
    ("", "", True), ("", "a", True), ("a", "a", True), ("a", "", False)])
def test_unknown_outcome_may_or_may_not_take_effect_but_not_both(first: str, second: str,
                                                                 ok: bool) -> None:
    ops = [kv(0, "put", "x", "a", None, 0, INF),
           kv(1, "get", "x", None, first, 1, 2),
           kv(1, "get", "x", None, second, 3, 4)]
    assert check_history(ops, "kv").linearizable is ok


@pytest.mark.parametrize(("seen", "ok"), [("ab", True), ("ba", True), ("a", False), ("", False)])
def test_concurrent_appends_are_both_visible_after_they_return(seen: str, ok: bool) -> None:
    ops = [kv(0, "append", "x", "a", None, 0, 2), kv(1, "append", "x", "b", None, 1, 3),
           kv(2, "get", "x", None, seen, 4, 5)]
    assert check_history(ops, "kv").linearizable is ok


def test_keys_are_independent_so_one_bad_key_fails_the_history() -> None:
    ops = [kv(0, "put", "x", "1", None, 0, 1), kv(1, "put", "y", "2", None, 0, 1),
           kv(0, "get", "x", None, "1", 2, 3), kv(1, "get", "y", None, "", 2, 3)]
    result = check_history(ops, "kv")
    assert not result.linearizable
    assert result.failing_keys == ("y",)
    assert result.keys == 2


def test_failed_cas_means_the_compare_did_not_match() -> None:
    write = reg(0, "write", 1, None, 0, 1)
    assert not check_history([write, reg(1, "cas", (1, 2), False, 2, 3)], "register").linearizable
    assert check_history([write, reg(1, "cas", (0, 2), False, 2, 3)], "register").linearizable


def test_register_starts_nil_and_cas_swaps() -> None:
    ops = [reg(0, "read", None, None, 0, 1), reg(0, "cas", (None, 3), True, 2, 3),
           reg(0, "read", None, 3, 4, 5)]
    assert check_history(ops, "register").linearizable


def test_unknown_cas_swaps_only_if_it_matches() -> None:
    ops = [reg(0, "write", 1, None, 0, 1), reg(1, "cas", (2, 3), UNKNOWN, 2, INF),
           reg(0, "read", None, 3, 4, 5)]
    assert not check_history(ops, "register").linearizable


def test_read_order_must_respect_real_time_between_readers() -> None:
    # A new-old inversion: once a read has seen 1, a later read cannot see the older nil.
    ops = [reg(0, "write", 1, None, 0, 10), reg(1, "read", None, 1, 1, 2),
           reg(2, "read", None, None, 3, 4)]
    assert not check_history(ops, "register").linearizable


def test_ndjson_equal_timestamps_count_as_concurrent() -> None:
    text = "\n".join([
        '{"process": 0, "type": "invoke", "f": "put", "key": "k", "value": "v", "time": 1}',
        '{"process": 0, "type": "ok", "f": "put", "key": "k", "value": "v", "time": 5}',
        '{"process": 1, "type": "invoke", "f": "get", "key": "k", "value": null, "time": 5}',
        '{"process": 1, "type": "ok", "f": "get", "key": "k", "value": "", "time": 6}',
    ])
    history = parse(text, "h.ndjson")
    assert check_history(history.operations, history.model).linearizable
    later = text.replace('"time": 5}\n{"process": 1, "type": "invoke"',
                         '"time": 4}\n{"process": 1, "type": "invoke"')
    history = parse(later, "h.ndjson")
    assert not check_history(history.operations, history.model).linearizable


def test_ndjson_fail_is_dropped_and_info_stays_open() -> None:
    lines = [
        '{"process": 0, "type": "invoke", "f": "put", "key": "k", "value": "a", "time": 1}',
        '{"process": 0, "type": "fail", "f": "put", "key": "k", "value": "a", "time": 2}',
        '{"process": 1, "type": "invoke", "f": "put", "key": "k", "value": "b", "time": 3}',
        '{"process": 1, "type": "info", "f": "put", "key": "k", "value": "b", "time": 4}',
        '{"process": 2, "type": "invoke", "f": "get", "key": "k", "value": null, "time": 5}',
        '{"process": 2, "type": "ok", "f": "get", "key": "k", "value": "%s", "time": 6}',
    ]
    for seen, ok in [("", True), ("b", True), ("a", False)]:
        history = parse("\n".join(lines) % seen, "h.ndjson")
        assert [op.f for op in history.operations] == ["put", "get"]
        assert check_history(history.operations, "kv").linearizable is ok


def test_empty_history_is_linearizable() -> None:
    result = check_history([], "kv")
    assert result.linearizable and result.operations == 0
