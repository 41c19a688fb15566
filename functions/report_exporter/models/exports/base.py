"""Fields every export has, whatever its vendor."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from report_exporter.errors import InvalidExportError

PERIOD_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
Period = Annotated[str, StringConstraints(pattern=PERIOD_PATTERN)]
ExportName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{1,47}$")]


class VendorName(StrEnum):
    PARTICLE = "particle"
    HERE = "here"
    TELNYX = "telnyx"
    SENET = "senet"
    KORE = "kore"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, validated like a new instance (``model_copy`` would accept any key, unchecked)."""
        return self.model_validate({**self.model_dump(), **changes})


def _check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'UTC' or 'Europe/Berlin')") from None
    return value


class ScheduleSpec(Frozen):
    """When the monthly schedule fires. Defaults: day 3, 06:00 UTC (HERE and KORE settle within 48 h)."""

    enabled: bool = True
    day_of_month: int = Field(default=3, ge=1, le=28)
    hour: int = Field(default=6, ge=0, le=23)
    minute: int = Field(default=0, ge=0, le=59)
    timezone: str = "UTC"
    flexible_window_minutes: int = Field(default=15, ge=0, le=1440)

    _zone = field_validator("timezone")(_check_zone)


MAX_EXPORT_BYTES = 64 * 1024
"""An export's spec travels in every state of its execution, whose payloads Step Functions caps at 256 KiB.
Bounded at a quarter of that, a state also holds its job, its raw and curated objects and an error
cause (at most 32 KiB) with room to spare (tests/unit/models/test_payload_limits.py)."""


class ExportBase(Frozen):
    """One configured job: a vendor account, its parameters, a schedule and the name of its secret."""

    name: ExportName
    secret_name: str = Field(min_length=1, max_length=512, pattern=r"^[A-Za-z0-9/_+=.@-]+$")
    # False: the secret already exists (managed elsewhere); the stack only grants read on it by name.
    create_secret: bool = True
    base_url: str = Field(default="", pattern=r"^(https?://[^\s?#]+)?$")
    timezone: str = "UTC"
    schedule: ScheduleSpec = ScheduleSpec()
    report_deadline_minutes: int = Field(default=360, ge=1, le=24 * 60)
    description: str = ""

    _zone = field_validator("timezone")(_check_zone)

    @model_validator(mode="after")
    def _fits_in_a_state(self) -> ExportBase:
        size = len(self.model_dump_json())
        if size > MAX_EXPORT_BYTES:
            raise ValueError(
                f"the export is {size:,} bytes as JSON, but at most {MAX_EXPORT_BYTES:,} fit in the state the state "
                "machine passes between its steps (Step Functions allows 256 KiB): shorten its lists (filter "
                "Particle devices by product, for example) or split it into several exports"
            )
        return self

    @property
    def vendor_name(self) -> VendorName:
        # Every concrete export declares ``vendor: Literal[...]``; the base class does not.
        return VendorName(getattr(self, "vendor"))  # noqa: B009

    def resolved_base_url(self) -> str:
        """The configured base URL, or the vendor's documented default."""
        return (self.base_url or self.default_base_url()).rstrip("/")

    def default_base_url(self) -> str:
        raise NotImplementedError

    def account_key(self) -> str:
        """Identity of the vendor account for the outstanding-request cap (never a secret)."""
        return f"{self.vendor_name.value}:{self.secret_name}"

    def max_outstanding_reports(self) -> int | None:
        """How many report requests the vendor allows in flight per account; None when unlimited."""
        return None

    def check_window(self, window: Window, *, now: datetime) -> None:
        """Refuse a period the vendor cannot serve, before any request is made.

        Raises:
            InvalidExportError: naming the export, the period and the vendor's limit.
        """


class Window(Frozen):
    """The calendar month a run covers, in the export's time zone: ``start`` inclusive, ``end`` exclusive."""

    period: Period
    start: datetime
    end: datetime

    @property
    def first_day(self) -> date:
        return self.start.date()

    @property
    def last_day(self) -> date:
        return (self.end - timedelta(days=1)).date()


def month_window(period: str, timezone: str) -> Window:
    """The window of ``period`` (``YYYY-MM``) in ``timezone``."""
    year, month = (int(part) for part in period.split("-"))
    zone = ZoneInfo(timezone)
    start = datetime(year, month, 1, tzinfo=zone)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=zone)
    return Window(period=period, start=start, end=end)


def previous_period(moment: datetime, timezone: str) -> str:
    """The calendar month before ``moment`` as seen in ``timezone``."""
    local = moment.astimezone(ZoneInfo(timezone))
    first = local.replace(day=1)
    last_month = first - timedelta(days=1)
    return f"{last_month.year:04d}-{last_month.month:02d}"


def refuse(export: ExportBase, window: Window, reason: str) -> InvalidExportError:
    return InvalidExportError(f"export {export.name!r} period {window.period}: {reason}")
