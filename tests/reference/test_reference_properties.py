"""Hypothesis: random schedules through the reference keep Raft's safety properties."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from walks import assert_safe, random_walk

from raftspec.reference import Config, steps, successors, within_bounds

CONFIGS = [
    Config(servers=3, values=2, max_term=4, max_log_length=3, max_messages=3),
    Config(servers=2, values=1, max_term=5, max_log_length=3, max_messages=2),
    Config(servers=4, values=1, max_term=3, max_log_length=2, max_messages=2),
    Config(servers=5, values=1, max_term=3, max_log_length=2, max_messages=2, drop=False),
]


@st.composite
def walks(draw):
    """A random schedule: a config and a sequence of choices among the enabled successors."""
    config = draw(st.sampled_from(CONFIGS))
    choices = draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=120))
    return config, choices


@settings(max_examples=300, deadline=None)
@given(walks())
def test_random_schedules_keep_every_safety_property(walk) -> None:
    config, choices = walk
    assert_safe(random_walk(config, choices), config)


@settings(max_examples=150, deadline=None)
@given(walks())
def test_steps_are_pure_functions_of_the_state(walk) -> None:
    config, choices = walk
    state = random_walk(config, choices)[-1]
    first = list(steps(state, config))
    again = list(steps(state, config))
    assert first == again
    actions = [action for action, _ in first]
    assert len(actions) == len(set(actions)), "one successor per (action, parameters)"
    kept = list(successors(state, config))
    assert kept == [(a, s) for a, s in first if within_bounds(s, config)]


@settings(max_examples=150, deadline=None)
@given(walks())
def test_terms_never_decrease_and_logs_stay_term_sorted(walk) -> None:
    config, choices = walk
    path = random_walk(config, choices)
    for before, after in zip(path, path[1:], strict=False):
        for s, t in zip(before.servers, after.servers, strict=True):
            assert t.current_term >= s.current_term
    for state in path:
        for s in state.servers:
            terms = [e.term for e in s.log]
            assert terms == sorted(terms) and all(t <= s.current_term for t in terms)
