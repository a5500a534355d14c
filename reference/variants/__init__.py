"""Protocol variants: each module defines ``steps(state, config)`` like ``reference.successors``."""
