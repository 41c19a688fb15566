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
