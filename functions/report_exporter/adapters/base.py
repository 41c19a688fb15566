"""The vendor adapter contract: request a report, poll it, download it into raw sinks."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import httpx
from pydantic import SecretStr

from report_exporter.clock import Clock
from report_exporter.errors import ExporterError, SecretError
from report_exporter.models.exports import ExportBase
from report_exporter.models.payloads import JobStatus, RunPlan

Credentials = Mapping[str, SecretStr]


@dataclass(frozen=True)
class RequestResult:
    """What asking for a report gave: an id to poll, or READY for synchronous vendors."""

    status: JobStatus
    report_id: str | None = None


@dataclass(frozen=True)
class PollResult:
    """One status check. ``retry_after`` is the vendor's hint (seconds) to wait before the next one."""

    status: JobStatus
    retry_after: float | None = None
    detail: str = ""


class RawWriter(Protocol):
    def write(self, data: bytes, /) -> object: ...


class RawSink(Protocol):
    """Where an adapter streams the vendor's files; each ``open`` becomes one raw S3 object.

    ``name`` is the file name under the run's raw prefix (for example ``report-1234.csv``). A block that
    raises leaves nothing behind.
    """

    def open(
        self, *, dataset: str, name: str, content_type: str, records: Callable[[], int | None] | None = None
    ) -> AbstractContextManager[RawWriter]: ...


class ReportAdapter(Protocol):
    """One vendor behind the three verbs of the state machine."""

    cadence: Cadence
    """When to poll a pending report (see ``Cadence``)."""

    timeout_error: type[ExporterError]
    """Raised by CheckReport when the report is still pending at the export's deadline."""

    def request(self, plan: RunPlan) -> RequestResult:
        """Ask the vendor for the run's report (async vendors) or confirm it can be read (sync)."""
        ...

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        """Ask the vendor how the report is doing. Terminal failures raise."""
        ...

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        """Stream the report (or every page) into ``sink``; never hold the whole file in memory."""
        ...


class AdapterFactory(Protocol):
    """Builds an export's adapter. The clock is the process's (virtual in the demo and the tests): token
    expiry, settle-time checks and in-Lambda waits must agree with the time the rest of the run sees."""

    def __call__(
        self, export: ExportBase, client: httpx.Client, credentials: Credentials, clock: Clock
    ) -> ReportAdapter: ...


def secret_field(credentials: Credentials, field: str, export: ExportBase) -> SecretStr:
    """One required field of the export's secret.

    Raises:
        SecretError: naming the export, the secret and the missing field (never a value).
    """
    value = credentials.get(field)
    if value is None or not value.get_secret_value():
        raise SecretError(f"export {export.name!r}: secret {export.secret_name!r} has no {field!r}")
    return value


@dataclass(frozen=True)
class Cadence:
    """When to poll a pending report: the vendor's documented opening waits, then waits that grow with the
    report's age.

    Wait ``n`` (before poll ``n + 1``) is ``steps[n]`` for the first ``len(steps)`` waits. After them it is
    ``growth`` times the report's age (the time since it was requested), never shorter than the last step
    (the vendor's guidance on how often to ask) and never longer than ``cap``. So a report is found at most
    ``max(steps[-1], growth * age, cap)`` after it is ready, and a report pending for a day costs polls in
    proportion to the logarithm of its age rather than to the age itself. ``growth=0`` holds the last step.
    CheckReport also stops every wait at the run's deadline, and a throttled poll waits longer.
    """

    steps: tuple[int, ...]
    growth: float = 0.0
    cap: int = 3600

    def __post_init__(self) -> None:
        if not self.steps or min(self.steps) < 1 or self.growth < 0 or self.cap < max(self.steps):
            raise ValueError(f"invalid cadence {self!r}")

    def wait(self, polls: int, age_seconds: float) -> int:
        """Seconds to wait before poll ``polls + 1`` (``polls`` already done) of a report ``age_seconds`` old."""
        if polls < len(self.steps):
            return self.steps[polls]
        floor = self.steps[-1]
        return max(floor, min(self.cap, math.ceil(self.growth * age_seconds)))


def next_wait(cadence: Cadence, polls: int, age_seconds: float = 0.0) -> int:
    """The wait before poll ``polls + 1`` (``polls`` already done) of a report ``age_seconds`` old."""
    return cadence.wait(polls, age_seconds)
