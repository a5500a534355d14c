"""Shipped variants of raft.tla: each module's ``edit(protocol)`` edits the action table."""
