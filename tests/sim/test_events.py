"""The event loop runs events in time order, then priority, then the order they were scheduled."""

from gpufleet.sim.events import EventLoop


def test_events_run_in_time_priority_then_fifo_order():
    loop, seen = EventLoop(), []
    loop.at(5, lambda: seen.append(("late", loop.now)))
    loop.at(1, lambda: seen.append(("b", loop.now)), priority=1)
    loop.at(1, lambda: seen.append(("a", loop.now)), priority=0)
    loop.at(1, lambda: seen.append(("a2", loop.now)), priority=0)
    loop.at(2, lambda: loop.at(3, lambda: seen.append(("spawned", loop.now))))
    loop.run()
    assert seen == [("a", 1), ("a2", 1), ("b", 1), ("spawned", 3), ("late", 5)]
    assert loop.clock() == 5 and len(loop) == 0


def test_run_until_stops_the_clock_there():
    loop, seen = EventLoop(), []
    loop.at(10, lambda: seen.append(loop.now))
    loop.run(until=4)
    assert seen == [] and loop.now == 4
    loop.at(1, lambda: seen.append(loop.now))  # the past is clamped to now
    loop.run()
    assert seen == [4, 10]
