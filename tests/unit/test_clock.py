"""The virtual clock: time passes only in waits, and only when every actor waits."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from report_exporter.clock import SYSTEM, VirtualClock

START = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


def test_a_lone_sleeper_moves_time_by_exactly_what_it_slept() -> None:
    clock = VirtualClock(START)
    clock.sleep(15)
    clock.sleep(30.5)
    assert clock.now() - START == timedelta(seconds=45.5)


def test_time_stands_still_while_another_actor_works() -> None:
    # Given two actors: one waits 600 s while the other is still busy
    clock = VirtualClock(START)
    clock.join("busy")
    clock.join("waiter")
    woke_at: list[datetime] = []

    def waiter() -> None:
        clock.sleep(600)
        woke_at.append(clock.now())
        clock.leave("waiter")

    thread = threading.Thread(target=waiter)
    thread.start()
    # Then, however long the busy one takes in real time, no virtual time passes for it
    thread.join(timeout=0.3)
    assert clock.now() == START and woke_at == []
    # When the busy actor also waits, time jumps to the earliest wake-up: its own 60 s
    clock.sleep(60)
    assert clock.now() == START + timedelta(seconds=60)
    # And once it leaves, the waiter wakes at exactly 600 s
    clock.leave("busy")
    thread.join(timeout=10)
    assert woke_at == [START + timedelta(seconds=600)]


def test_a_timer_fires_when_its_time_comes_and_can_cancel_a_sleep() -> None:
    clock = VirtualClock(START)
    stopped = threading.Event()
    clock.call_at(START + timedelta(seconds=90), stopped.set)
    clock.sleep(3600, cancelled=stopped.is_set)
    assert stopped.is_set() and clock.now() == START + timedelta(seconds=90)


def test_a_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        VirtualClock(datetime(2026, 11, 3))


def test_the_system_clock_is_aware_utc() -> None:
    assert SYSTEM.now().utcoffset() == timedelta(0)
