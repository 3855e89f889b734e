"""The worker's thread pool: it grows when its threads are stuck, not when they are busy."""

from __future__ import annotations

import asyncio
import threading
import time

from devserver.worker.threadpool import ThreadPool


def _pool_threads(name: str) -> int:
    return sum(1 for thread in threading.enumerate() if thread.name.startswith(f"{name}-"))


def _compute(seconds: float) -> int:
    """Hold the GIL for ``seconds``, as a CPU-bound view does."""
    end, turns = time.perf_counter() + seconds, 0
    while time.perf_counter() < end:
        turns += 1
    return turns


def test_busy_threads_are_not_joined_by_more() -> None:
    """300 CPU-bound calls wait in line for two busy threads: more threads would only fight them for the GIL.

    The calls do wait longer than the pool's growth delay; a pool that grew on
    waiting alone ends at its maximum of 16 threads.
    """
    async def run() -> int:
        pool = ThreadPool(asyncio.get_running_loop(), base=2, maximum=16, name="busy")
        results = await asyncio.gather(*(pool.submit(_compute, 0.001) for _ in range(300)))
        assert all(turns > 0 for turns in results)
        return _pool_threads("busy")

    assert asyncio.run(run()) <= 4


def test_blocked_threads_get_company() -> None:
    """Calls that block (a slow upstream, ``time.sleep``) each get a thread, up to the maximum: none waits on them."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def blocked() -> str:
        started.release()
        release.wait(10)
        return "released"

    async def run() -> list[str]:
        pool = ThreadPool(asyncio.get_running_loop(), base=2, maximum=8, name="blocked")
        calls = [pool.submit(blocked) for _ in range(6)]
        deadline = time.monotonic() + 5
        for _ in range(6):  # all six run at once: the pool grew from 2 to 6 threads
            while not started.acquire(blocking=False):
                assert time.monotonic() < deadline, f"only {_pool_threads('blocked')} threads after 5 s"
                await asyncio.sleep(0.005)
        fast = await asyncio.wait_for(pool.submit(_compute, 0.0), 5)  # a seventh thread answers a fast call
        assert fast >= 0
        release.set()
        return list(await asyncio.gather(*calls))

    try:
        assert asyncio.run(run()) == ["released"] * 6
    finally:
        release.set()


def test_the_calls_in_flight_are_counted_for_the_inline_policy_until_each_is_answered() -> None:
    release = threading.Event()

    async def run() -> list[int]:
        pool = ThreadPool(asyncio.get_running_loop(), base=2, maximum=4, name="counted")
        counts = [pool.inline.in_pool]
        waiting = pool.submit(release.wait, 10)
        quick = pool.submit(_compute, 0.0)
        counts.append(pool.inline.in_pool)
        await quick
        counts.append(pool.inline.in_pool)
        release.set()
        await waiting
        counts.append(pool.inline.in_pool)
        return counts

    assert asyncio.run(run()) == [0, 2, 1, 0]
