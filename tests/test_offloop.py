"""Handlers never block the event loop: on a running loop a plain or generator handler runs
in a worker thread (state/base.off_loop), its results reach Reflex as an async generator's
items in order; without a loop (tests, scripts) it runs in place."""
from __future__ import annotations

import asyncio
import threading
import time

from rxcrm.state.base import off_loop


class Fake:
    pass


def _slow(self, x):
    time.sleep(0.3)
    return (x, threading.current_thread().name)


def _steps(self, n):
    for i in range(n):
        time.sleep(0.05)
        yield i
    return "done"


async def _items(agen):
    return [item async for item in agen]


def test_without_a_loop_a_handler_runs_in_place():
    assert off_loop(_slow)(Fake(), 1) == (1, threading.current_thread().name)
    assert list(off_loop(_steps)(Fake(), 2)) == [0, 1]


def test_on_the_loop_handlers_run_in_threads_and_the_loop_keeps_serving():
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        t = asyncio.create_task(ticker())
        started = time.perf_counter()
        results = await asyncio.gather(*(_items(off_loop(_slow)(Fake(), i)) for i in range(4)))
        took = time.perf_counter() - started
        t.cancel()
        return results, took, ticks

    results, took, ticks = asyncio.run(main())
    assert [r[0][0] for r in results] == [0, 1, 2, 3]
    assert all(r[0][1].startswith("rxcrm-handler") for r in results)
    assert took < 0.9          # four 0.3 s handlers side by side, not 1.2 s in a row
    assert ticks >= 15         # the loop went on ticking meanwhile (blocked: ~0)


def test_a_generator_handler_yields_each_step_then_its_return_value():
    async def main():
        return await _items(off_loop(_steps)(Fake(), 3))
    assert asyncio.run(main()) == [0, 1, 2, "done"]


def test_event_handlers_of_the_app_are_off_loop():
    from rxcrm.state.work import WorkState
    fn = WorkState.event_handlers["on_drag_end"].fn
    assert fn.__wrapped__ is not None and not asyncio.iscoroutinefunction(fn)
    assert fn.__code__ is off_loop(lambda self: None).__code__  # the off-loop wrapper, not the bare handler
