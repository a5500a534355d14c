"""A model built in a test (protocol and config given directly, no YAML file): what
``ProtocolSystem`` reads from a loaded model, shared by the checker's tests."""

from __future__ import annotations

import attrs

from raftspec.reference import Config


@attrs.frozen
class AdHocModel:
    protocol: object
    config: Config
    symmetry: bool = False
    state_invariants: tuple[str, ...] = ()
    step_properties: tuple[str, ...] = ()


def constrained_walk(system, choices: list[int], *, random_init: bool = False,
                     siblings: bool = False) -> list:
    """States along a random path within the system's constraint, each step chosen by the next
    of ``choices`` among the successors within it (stops where there are none): from the first
    initial state, or from the one ``choices[0]`` picks (``random_init``). With ``siblings``,
    every successor within the constraint of each state on the path is listed, in ``steps``
    order (as the checker meets them), not only the one the path goes on with."""
    inits = list(system.init_states())
    state = inits[choices[0] % len(inits)] if random_init and choices else inits[0]
    path = [state]
    for choice in choices:
        options = [nxt for _, nxt in system.steps(state) if system.constraint(nxt)]
        if not options:
            break
        state = options[choice % len(options)]
        path.extend(options if siblings else [state])
    return path
