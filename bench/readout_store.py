"""What the supervisor's request store costs: time per delivered request, and its memory after many.

Feeds RequestStore (devserver/readout/store.py) batches of RequestEvents shaped like a
JSON-log request (headers, a preview, a request id), in rounds, and prints the median
cost per event and the traced memory the store holds after 1,000, 10,000 and 100,000
requests (bounded: the last two must match the first).  Run from the checkout:
``PYTHONPATH=. python bench/readout_store.py``.
"""

from __future__ import annotations

import os
import statistics
import time
import tracemalloc

from devserver.ipc.events import RequestEvent
from devserver.readout.store import RequestStore

BATCH = 64


def event(number: int) -> RequestEvent:
    """A request of its own: 15 request headers, 5 response headers, a 512-byte preview (none shared)."""
    headers = tuple((f"x-header-{n}", f"{number:040}") for n in range(15))
    return RequestEvent(time.time(), 1, "127.0.0.1:5000", "GET", f"/page/{number}", "HTTP/1.1",
                        500 if number % 50 == 0 else 200, 1000, 1.5, headers, headers[:5], os.urandom(512),
                        request_id=f"{number:x}")


def held_after(count: int) -> int:
    """Bytes traced in the store's deques after ``count`` requests (the events themselves included)."""
    tracemalloc.start()
    store = RequestStore()
    for start in range(0, count, BATCH):
        store.add([event(n) for n in range(start, start + BATCH)])
    held, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del store
    return held


def main() -> None:
    batches = [[event(n) for n in range(b * BATCH, (b + 1) * BATCH)] for b in range(200)]
    per_event = []
    for _ in range(7):
        store = RequestStore()
        started = time.perf_counter()
        for batch in batches:
            store.add(batch)
        per_event.append((time.perf_counter() - started) / (len(batches) * BATCH))
    print(f"store.add: median {statistics.median(per_event) * 1e6:.2f} µs per request (7 rounds of "
          f"{len(batches) * BATCH} requests)")
    for count in (1_000, 10_000, 100_000):
        print(f"memory held after {count:>7,} requests: {held_after(count) / 1024:,.0f} KiB")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
