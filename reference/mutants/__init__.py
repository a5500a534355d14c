"""Planted bugs: each module replaces one or two rows of raft.tla's action table with a buggy
copy of the action (``edit(protocol)``), and names the Z3 encoder of the copy."""
