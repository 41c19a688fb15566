"""Time, injected: the system clock in Lambda and in ``report-exporter run``, a virtual clock in the demo and the tests.

Nothing reads the time from a module global: handlers take the clock from the composition root
(:mod:`report_exporter.runtime`), adapters and simulators are given one. Two implementations:

* :class:`SystemClock`: real time; ``sleep`` really sleeps.
* :class:`VirtualClock`: fully virtual time for several concurrent *actors* (the executions the local
  runner starts). Time stands still while any actor works and jumps to the earliest wake-up once every
  actor is asleep, the way a discrete-event simulation advances. A run therefore sees the same times on
  an idle or a loaded machine, and a wait of one execution cannot make time run past another that is
  still busy (a lease could otherwise look expired to one execution while its holder is working).

Rule for code that sleeps on a virtual clock: never hold a lock another actor may need while asleep
(the other actor would neither work nor sleep, and time could not advance).
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""
        ...

    def sleep(self, seconds: float) -> None:
        """Pause the caller for ``seconds``."""
        ...


class SystemClock:
    """Real time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


SYSTEM = SystemClock()


class VirtualClock:
    """Virtual time shared by concurrent actors; see the module docstring.

    With no actor registered (a unit test, a single thread), :meth:`sleep` simply moves time forward.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)
        self._cond = threading.Condition()
        self._actors: set[Hashable] = set()
        self._sleepers: dict[int, datetime] = {}
        self._timers: list[tuple[datetime, int, Callable[[], None]]] = []
        self._ids = itertools.count()
        self.slept = 0.0
        """Total seconds slept by every caller (what real time would have cost)."""

    def now(self) -> datetime:
        with self._cond:
            return self._now

    # Actors.
    def join(self, actor: Hashable) -> None:
        """``actor`` is working: time may not move until it sleeps or leaves."""
        with self._cond:
            self._actors.add(actor)

    def leave(self, actor: Hashable) -> None:
        with self._cond:
            self._actors.discard(actor)
            self._cond.notify_all()

    def poke(self) -> None:
        """Wake every sleeper to re-check its ``cancelled`` condition."""
        with self._cond:
            self._cond.notify_all()

    def call_at(self, when: datetime, callback: Callable[[], None]) -> None:
        """Run ``callback`` when time reaches ``when`` (it counts as a wake-up, like a sleeper)."""
        with self._cond:
            heapq.heappush(self._timers, (when, next(self._ids), callback))
            self._cond.notify_all()

    # Time passing.
    def advance(self, seconds: float) -> None:
        """Move time forward by hand (single-threaded tests)."""
        due: list[Callable[[], None]] = []
        with self._cond:
            self._now += timedelta(seconds=seconds)
            due = self._pop_due_timers()
            self._cond.notify_all()
        for callback in due:
            callback()

    def sleep(self, seconds: float, *, cancelled: Callable[[], bool] | None = None) -> None:
        """Sleep ``seconds`` of virtual time; returns early once ``cancelled()`` is true (checked on every wake-up)."""
        if seconds <= 0:
            return
        me = next(self._ids)
        with self._cond:
            wake = self._now + timedelta(seconds=seconds)
            self._sleepers[me] = wake
            self.slept += seconds
            try:
                while self._now < wake and not (cancelled is not None and cancelled()):
                    # Jump only when everyone sleeps and nobody is due yet: a due sleeper must first get the
                    # lock and leave (or, if this thread jumped again meanwhile, time would not move).
                    if len(self._sleepers) >= len(self._actors) and min(self._sleepers.values()) > self._now:
                        due = self._jump()
                        if due:
                            self._cond.release()
                            try:
                                for callback in due:
                                    callback()
                            finally:
                                self._cond.acquire()
                        continue
                    self._cond.wait(timeout=0.05)
            finally:
                del self._sleepers[me]
                self._cond.notify_all()

    def _jump(self) -> list[Callable[[], None]]:
        """Everyone is asleep: move to the earliest wake-up and return the timers that fell due."""
        candidates = list(self._sleepers.values())
        if self._timers:
            candidates.append(self._timers[0][0])
        target = min(candidates)
        if target > self._now:
            self._now = target
        self._cond.notify_all()
        return self._pop_due_timers()

    def _pop_due_timers(self) -> list[Callable[[], None]]:
        due: list[Callable[[], None]] = []
        while self._timers and self._timers[0][0] <= self._now:
            due.append(heapq.heappop(self._timers)[2])
        return due
