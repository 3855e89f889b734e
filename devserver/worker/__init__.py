"""A worker process: the asyncio connection, accepting, the thread pool, the in-flight table, the event channel."""
