"""A real Raft over UDP: pure core (core.py) driven by an asyncio event loop (server.py).

Independent of ``reference/`` by design: the trace validator compares the two.
"""
