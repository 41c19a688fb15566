"""What the process runs on: its clock and, for vendor calls, its HTTP transport.

In Lambda both are the real ones. The local runner swaps them for the duration of a local environment
(a virtual clock in the demo and the tests; a transport that routes simulated vendors in process and
injects faults), so handlers, adapters and simulators all see the same time. Kept free of heavy imports:
every handler reads its clock here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from report_exporter.clock import SYSTEM, Clock

_clock: Clock = SYSTEM
_transport: Any = None


def clock() -> Clock:
    """The process's clock (the system clock in Lambda)."""
    return _clock


def transport() -> Any:
    """The ``httpx.BaseTransport`` vendor clients use, or None for httpx's own (Lambda)."""
    return _transport


@contextmanager
def override(*, clock: Clock | None = None, transport: Any = None) -> Iterator[None]:
    """Run on another clock and transport until the block ends (the local runner)."""
    global _clock, _transport
    saved = _clock, _transport
    _clock = clock or _clock
    _transport = transport if transport is not None else _transport
    try:
        yield
    finally:
        _clock, _transport = saved
