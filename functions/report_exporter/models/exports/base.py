"""Fields every export has, whatever its vendor."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationInfo, field_validator, model_validator

from report_exporter.errors import InvalidExportError
from report_exporter.models.exports.rate_card import RateCard

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
    publish_by_day: int | None = Field(default=None, ge=2, le=31)
    """The day of the following month by which the month must be published: from 00:00 that day (in the
    schedule's time zone; the month's last day when it is shorter) WatchRuns alerts that it is late. Default:
    two days after the schedule fires; an unscheduled export is never late unless this is set."""
    description: str = ""
    rate_card: RateCard | None = None
    """Prices for the usage in the ``focus_usage`` view when the vendor reports none (rate_card.py)."""

    _zone = field_validator("timezone")(_check_zone)

    @field_validator("publish_by_day")
    @classmethod
    def _after_the_schedule(cls, value: int | None, info: ValidationInfo) -> int | None:
        schedule = info.data.get("schedule")
        if value is not None and isinstance(schedule, ScheduleSpec) and schedule.enabled \
                and value <= schedule.day_of_month:
            raise ValueError(f"must be after schedule.day_of_month ({schedule.day_of_month}): the month is due "
                             "after its run is scheduled")
        return value

    def publish_by(self) -> int | None:
        """The day of the following month from which an unpublished month is late (None: never)."""
        if self.publish_by_day is not None:
            return self.publish_by_day
        return self.schedule.day_of_month + 2 if self.schedule.enabled else None

    def late_from(self, period: str) -> datetime | None:
        """When ``period`` counts as late if it is not published by then (None: never)."""
        return late_from(period, self.publish_by(), self.schedule.timezone)

    @model_validator(mode="after")
    def _rate_card_prices_known_metrics(self) -> ExportBase:
        self.check_rate_card_metrics()
        return self

    def check_rate_card_metrics(self) -> None:
        """Refuse a rate card for a vendor that reports its own cost, or for a metric the export's rows lack.

        Raises:
            ValueError: naming the field (``rate_card`` or ``rate_card.metrics``).
        """
        if self.rate_card is None:
            return
        priceable = self.priceable_metrics()
        if priceable is None:
            return
        if not priceable:
            raise ValueError(f"rate_card: {self.own_cost_reason()}; remove the rate card")
        unknown = sorted(set(self.rate_card.metrics) - priceable)
        if unknown:
            raise ValueError(
                f"rate_card.metrics: {', '.join(map(repr, unknown))} is not a metric of this export's usage "
                f"(priceable: {', '.join(map(repr, sorted(priceable)))})"
            )

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

    def priceable_metrics(self) -> frozenset[str] | None:
        """The ``x_Metric`` values of this export's FOCUS rows that a rate card may price.

        Empty: the vendor reports the cost, so no rate card applies. None: any name may occur (HERE's billed
        items), so every name is accepted.
        """
        return frozenset()

    def own_cost_reason(self) -> str:
        """Why a rate card cannot apply, when :meth:`priceable_metrics` is empty."""
        return f"{self.vendor_name.value} exports report their own cost"

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


def late_from(period: str, publish_by_day: int | None, timezone: str) -> datetime | None:
    """00:00 (in ``timezone``) of day ``publish_by_day`` of the month after ``period``, or of its last day when
    it is shorter; None when ``publish_by_day`` is None."""
    if publish_by_day is None:
        return None
    following = month_window(period, timezone).end
    last = (month_window(f"{following.year:04d}-{following.month:02d}", timezone).end - timedelta(days=1)).day
    return following.replace(day=min(publish_by_day, last))


def refuse(export: ExportBase, window: Window, reason: str) -> InvalidExportError:
    return InvalidExportError(f"export {export.name!r} period {window.period}: {reason}")
