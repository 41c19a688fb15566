"""For ``make mutate`` only (staged as the workspace's root conftest): a test running over three minutes fails,
and the few tests that check the git checkout rather than the code are left out.

A mutant can deadlock the CSV reader's or the Parquet writer's threads. Such a process uses no CPU, so
mutmut's CPU-time limit never fires, and its wall-clock limit is a multiple of the *whole* test selection's
estimate: minutes per mutant. The slowest single test takes seconds (a minute on a host loaded eight times
over its CPUs, importing without bytecode), so three minutes are only ever reached by a hang; the alarm
interrupts the blocked main thread and the test fails (the mutant is caught).
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import FrameType

import pytest

LIMIT_SECONDS = 180


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


# Tests of the checkout itself: they list git's files or compare the package under ``functions/`` with the one
# the tests import, which in the staged copy are mutmut's instrumented sources under ``src/``. They test no
# core module's behaviour, so no mutant could be caught by them.
CHECKOUT_TESTS = (
    "tests/unit/test_no_outside_references.py::test_no_tracked_file_refers_to_a_document_outside_the_repository",
    "tests/unit/test_template_cache.py::test_on_a_warm_cache_neither_the_cdk_nor_the_infra_is_imported",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    left_out = [item for item in items if item.nodeid in CHECKOUT_TESTS]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if item.nodeid not in CHECKOUT_TESTS]
