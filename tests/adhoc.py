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
