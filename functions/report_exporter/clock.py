"""The one source of "now" for the handlers; the local runner shifts it to compress waits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_offset = timedelta(0)


def now() -> datetime:
    """Current time in UTC, plus the offset the local runner adds for waits it did not sleep."""
    return datetime.now(UTC) + _offset


def advance(seconds: float) -> None:
    """Move the clock forward (local runner only: a Wait state that was recorded, not slept)."""
    global _offset
    _offset += timedelta(seconds=seconds)


def reset() -> None:
    """Back to real time."""
    global _offset
    _offset = timedelta(0)


def sleep(seconds: float) -> None:
    """Pause inside a Lambda (for example a short ``Retry-After`` between pages).

    The local runner replaces this with one that only advances the clock, so nothing really waits.
    """
    if seconds > 0:
        _sleeper(seconds)


def _real_sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)


_sleeper = _real_sleep


def use_virtual_time(enabled: bool) -> None:
    """Local runner: make :func:`sleep` advance the clock instead of blocking."""
    global _sleeper
    _sleeper = advance if enabled else _real_sleep
