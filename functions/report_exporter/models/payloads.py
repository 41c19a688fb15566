"""The JSON contract between states: every Lambda's input and output, frozen and strict.

The state accumulates: PlanRun's output becomes ``$`` (``{"plan": ...}``), RequestReport and
CheckReport write ``$.job``, DownloadReport ``$.raw``, WriteParquet ``$.curated``. RecordFailure
receives whatever had accumulated plus ``$.error``.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from report_exporter.models.exports import ExportSpec, Period, Window
from report_exporter.models.exports.base import Frozen


class StartInput(Frozen):
    """Execution input: what a schedule, the backfill command and the local runner send."""

    export: ExportSpec
    period: Period | None = None
    scheduled_time: AwareDatetime | None = None


class PlanInput(Frozen):
    """PlanRun's payload: the execution input plus the execution's id and start time from the context object."""

    start: StartInput
    execution_id: str = Field(min_length=1)
    started_at: AwareDatetime | None = None
    """``$$.Execution.StartTime``: without a period or scheduled time, the run exports the month before it."""


class RunPlan(Frozen):
    """What one run exports: the export, the period and its window, and the deadline for the report."""

    export: ExportSpec
    window: Window
    execution_id: str = Field(min_length=1)
    started_at: AwareDatetime
    deadline: AwareDatetime

    @property
    def period(self) -> str:
        return self.window.period

    @property
    def run_name(self) -> str:
        return self.execution_id.rsplit(":", 1)[-1]


class PlanOutput(Frozen):
    plan: RunPlan


class JobStatus(StrEnum):
    PENDING = "PENDING"
    READY = "READY"


class ReportJob(Frozen):
    """The vendor report a run waits for. Synchronous vendors are READY at once with no report id."""

    job: str = Field(min_length=1)
    """The ledger's name for this report: the vendor's report id, or ``run:<execution>`` for synchronous vendors."""
    report_id: str | None = None
    status: JobStatus
    requested_at: AwareDatetime
    polls: int = Field(default=0, ge=0)
    wait_seconds: int = Field(default=0, ge=0, le=3600)
    adopted: bool = False
    link_expires_at: AwareDatetime | None = None
    """When the vendor's download link expires, if the vendor says (Particle's ``expires_at``)."""


class RequestInput(Frozen):
    plan: RunPlan


class CheckInput(Frozen):
    plan: RunPlan
    job: ReportJob


DownloadInput = CheckInput


class RawObject(Frozen):
    """One raw vendor file kept in S3, exactly as received."""

    dataset: str = Field(min_length=1)
    key: str = Field(min_length=1)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    content_type: str
    records: int | None = Field(default=None, ge=0)


class RawReport(Frozen):
    objects: tuple[RawObject, ...] = Field(min_length=1)


class ParquetInput(Frozen):
    plan: RunPlan
    job: ReportJob
    raw: RawReport
    replay: bool = False
    """Rebuild from kept raw objects (``report-exporter replay``): publish even if this report was published."""


class CuratedObject(Frozen):
    """One Parquet partition object as Athena sees it."""

    dataset: str
    table: str
    key: str
    rows: int = Field(ge=0)
    bytes: int = Field(ge=0)
    rows_outside_period: int = Field(default=0, ge=0)
    """Rows kept although their own date lies outside the run's window (each dataset defines the date)."""


class CuratedReport(Frozen):
    objects: tuple[CuratedObject, ...]
    rows: int = Field(ge=0)
    rows_outside_period: int = Field(default=0, ge=0)
    """Of ``rows``, how many are dated outside the run's window (kept, and counted here)."""
    published: bool = True
    """False when another execution had already published this vendor report (nothing written again)."""


class StepError(BaseModel):
    """What a Catch puts at ``$.error``."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    error: str = Field(alias="Error", default="States.Unknown")
    cause: str = Field(alias="Cause", default="")


class FailureState(BaseModel):
    """The state at the failing step plus the caught ``error``. Lenient on purpose: it must never refuse."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    error: StepError
    plan: RunPlan | None = None
    job: ReportJob | None = None
    export: dict[str, Any] | None = None
    period: str | None = None


class FailureInput(BaseModel):
    """RecordFailure's payload: the whole state and the execution's id."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    state: FailureState
    execution_id: str = ""


class FailureRecord(Frozen):
    export: str
    period: str | None
    error: str
    message: str
    execution_id: str
    notified: bool
    ledger_updated: bool
    """False when another execution holds the run (an adopter failed) or the month was already published."""
    recorded_at: datetime


class ExecutionStatusChange(BaseModel):
    """The ``detail`` of Step Functions' "Execution Status Change" event (EventBridge)."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    execution_arn: str = Field(alias="executionArn", min_length=1)
    status: str
    start_date: int | None = Field(default=None, alias="startDate")
    """Milliseconds since the epoch."""
    input: str | None = None
    """The execution input as a JSON string (omitted by EventBridge when it is too large)."""


class EndRunInput(BaseModel):
    """EndRun's payload: an EventBridge event for an execution that FAILED, TIMED_OUT or was ABORTED."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    detail: ExecutionStatusChange


class EndRunRecord(Frozen):
    export: str | None
    period: str | None
    execution_id: str
    status: str
    ledger_updated: bool
    notified: bool


class WatchedExport(Frozen):
    """What WatchRuns needs of one export (kept small: the hourly rule's input is at most 8 KB)."""

    name: str = Field(min_length=1)
    vendor: str
    timezone: str = "UTC"
    publish_by_day: int | None = Field(default=None, ge=1, le=31)
    """From the export's ``publish_by()``: the day of the following month from which it is late; None: never."""
    schedule_timezone: str = "UTC"


class WatchInput(Frozen):
    """WatchRuns' input, from its hourly EventBridge rule (constructs/run_watch.py)."""

    exports: tuple[WatchedExport, ...]
    state_machine_arn: str = ""
    interval_minutes: int = Field(default=60, ge=1, le=1440)
    """How often the rule fires: a finding is alerted once, at the first check that sees it."""
    link_margin_hours: int = Field(default=24, ge=1, le=24 * 6)
    """A ready report whose link expires within this margin and is not downloaded is at risk."""
    lookback_months: int = Field(default=6, ge=1, le=24)
    """How many past months of each export are checked for open reports (backfills included)."""


class WatchFinding(Frozen):
    """One thing an operator must act on: a link about to expire, or a month not published in time."""

    kind: str
    """``link_expiring`` or ``month_late``."""
    export: str
    period: str
    detail: str
    link: str
    alerted: bool
    """True when this check is the first to see it (the alert was published now)."""


class WatchReport(Frozen):
    checked_at: AwareDatetime
    open_reports: dict[str, int]
    """Per export: months with a report requested and not yet published or failed."""
    oldest_open_seconds: dict[str, int]
    link_headroom_seconds: dict[str, int]
    """Per export: the least time left on the link of a ready report not downloaded yet."""
    findings: tuple[WatchFinding, ...]

    @property
    def links_at_risk(self) -> int:
        return sum(f.kind == "link_expiring" for f in self.findings)

    @property
    def months_late(self) -> int:
        return sum(f.kind == "month_late" for f in self.findings)
