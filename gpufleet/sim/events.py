"""A discrete-event loop on a virtual clock, small enough to read in one sitting (after SimPy).

Events are (time, priority, sequence, action) in a heap; :meth:`EventLoop.run` pops the earliest, moves
the clock to its time and calls the action, which may schedule more events. At equal times the lower
priority runs first, then the one scheduled first, so a run is deterministic. The clock never goes back.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Callable


class EventLoop:
    def __init__(self, start: float = 0.0):
        self.now = start
        self._events: list[tuple[float, int, int, Callable[[], None]]] = []
        self._sequence = itertools.count()

    def clock(self) -> float:
        """The virtual time (give this to the scheduler as its clock)."""
        return self.now

    def at(self, time: float, action: Callable[[], None], priority: int = 0) -> None:
        """Run ``action`` at virtual ``time`` (not before now)."""
        heapq.heappush(self._events, (max(time, self.now), priority, next(self._sequence), action))

    def __len__(self) -> int:
        return len(self._events)

    def run(self, until: float | None = None) -> None:
        """Run events in time order until none is left (or the next one is after ``until``)."""
        while self._events:
            if until is not None and self._events[0][0] > until:
                self.now = until
                return
            time, _, _, action = heapq.heappop(self._events)
            self.now = time
            action()
