"""A read-only view of the requests the running server answered, for scripts and coding agents.

The supervisor's store, its local Unix-socket channel, ``devserver requests`` and ``devserver mcp``.
"""
