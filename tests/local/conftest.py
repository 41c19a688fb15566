"""End to end through the local runner: the synthesized state machine in moto, vendors simulated in process.

The CDK app is synthesized once per session (``local_templates`` in tests/conftest.py); every test gets fresh
moto resources and a virtual clock that starts at :data:`START`, so every test sees the same times on an idle
or a loaded machine.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from report_exporter.clock import VirtualClock
from report_exporter.local.demo import demo_exports
from report_exporter.local.faults import FaultPlan
from report_exporter.local.runner import LocalEnvironment

START = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
"""When every local test's clock starts: the third of the month, when the schedules fire."""
PERIOD = "2026-10"
"""The month before START: what a scheduled run exports."""


@pytest.fixture
def faults() -> FaultPlan:
    """The fault plan of the test's environment: add faults before the run starts."""
    return FaultPlan()


@pytest.fixture
def local_env(local_templates: dict[str, dict[str, Any]], faults: FaultPlan) -> Iterator[LocalEnvironment]:
    with LocalEnvironment(demo_exports(), templates=local_templates, clock=VirtualClock(START), faults=faults) as env:
        yield env


class CapturedLogs:
    """Everything a run printed or logged: the handlers' JSON logs at DEBUG, every logger, stdout/stderr."""

    def __init__(self, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
        self._caplog = caplog
        self._capfd = capfd
        self.handler_output = io.StringIO()

    def text(self) -> str:
        out, err = self._capfd.readouterr()
        return "\n".join([self.handler_output.getvalue(), out, err, self._caplog.text])


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Iterator[CapturedLogs]:
    from report_exporter.observability import logger

    caplog.set_level(logging.DEBUG)
    captured = CapturedLogs(caplog, capfd)
    handler = logging.StreamHandler(captured.handler_output)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield captured
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.INFO)
