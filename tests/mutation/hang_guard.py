"""For ``make mutate`` only (staged as the workspace's root conftest): a test running over a minute fails.

A mutant can deadlock the CSV reader's or the Parquet writer's threads. Such a process uses no CPU, so
mutmut's CPU-time limit never fires, and its wall-clock limit is a multiple of the *whole* test selection's
estimate: minutes per mutant. The slowest single test takes a few seconds, so a minute is only ever
reached by a hang; the alarm interrupts the blocked main thread and the test fails (the mutant is caught).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

LIMIT_SECONDS = 60


class HungTestError(Exception):
    pass


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise HungTestError(f"{item.nodeid} ran for over {LIMIT_SECONDS} s (deadlocked?)")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(LIMIT_SECONDS)
    try:
        return (yield)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
