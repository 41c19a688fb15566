"""KORE Wireless Programmable Wireless usage-records export (facts: facts.py).

Besides the export model this module reads a KORE list page (its records, its paging object) for both
the adapter (which counts records) and the dataset (which reads them), so neither imports the other: the
adapter must not pull in pyarrow, the dataset must not pull in httpx.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import Field

from report_exporter.models.exports.base import ExportBase, Window, refuse
from report_exporter.vendors.kore.facts import (
    ALL_MAX_MONTHS,
    BASE_URL,
    DAILY_MAX_MONTHS,
    HOURLY_MAX_SPAN,
    META_KEYS,
    RECORDS_KEY,
    RETENTION_MONTHS,
    TOKEN_URL,
)

Granularity = Literal["daily", "hourly", "all"]



def add_months(moment: datetime, months: int) -> datetime:
    """``moment`` moved by whole calendar months, the day clamped to the target month's length."""
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


class KoreExport(ExportBase):
    """KORE: the account's usage records (all SIMs), or one SIM's when ``sim_sid`` is set."""

    vendor: Literal["kore"] = "kore"
    granularity: Granularity = "daily"
    token_url: str = Field(default=TOKEN_URL, pattern=r"^https?://[^\s?#]+$")
    # A Sim SID (DE...) or the SIM's unique name, which the API accepts in its place (kore-openapi Sim).
    sim_sid: str = Field(default="", max_length=64, pattern=r"^[A-Za-z0-9._-]*$")

    def priceable_metrics(self) -> frozenset[str]:
        return frozenset()

    def own_cost_reason(self) -> str:
        return "KORE reports the billed amount of every usage record (data_billed, commands_billed)"

    def default_base_url(self) -> str:
        return BASE_URL

    def query_range(self, window: Window) -> tuple[datetime, datetime]:
        """``Start`` and ``End`` for the window, in UTC; KORE's ``End`` is inclusive, so the window's last second."""
        return window.start.astimezone(UTC), (window.end - timedelta(seconds=1)).astimezone(UTC)

    def check_window(self, window: Window, *, now: datetime) -> None:
        """Refuse a period past KORE's retention or wider than its granularity allows.

        Raises:
            InvalidExportError: naming the export, the period and the limit.
        """
        oldest = add_months(now, -RETENTION_MONTHS)
        if window.start < oldest:
            raise refuse(
                self,
                window,
                f"KORE keeps usage records for {RETENTION_MONTHS} months and deletes older ones, so this period "
                f"would be incomplete (the oldest servable instant is {oldest.astimezone(UTC):%Y-%m-%d %H:%M} UTC)",
            )
        start, end = self.query_range(window)
        if self.granularity == "hourly" and end - start > HOURLY_MAX_SPAN:
            raise refuse(
                self,
                window,
                f"KORE serves hourly usage for at most 31 days and this window spans {end - start} in time zone "
                f"{self.timezone!r}; use granularity 'daily' or time zone 'UTC'",
            )
        months = DAILY_MAX_MONTHS if self.granularity == "daily" else ALL_MAX_MONTHS
        if self.granularity != "hourly" and end >= add_months(start, months):
            raise refuse(self, window, f"KORE serves {self.granularity} usage for at most {months} months")


def page_meta(page: Any) -> dict[str, Any]:
    """The page's paging object under whichever name it came (empty when there is none)."""
    if isinstance(page, dict):
        for key in META_KEYS:
            meta = page.get(key)
            if isinstance(meta, dict):
                return meta
    return {}


def page_records(page: Any) -> list[Any] | None:
    """The page's usage records, or None when the page carries no list of them.

    The list is under ``usage_records``; the spec's ``meta.key`` names it, so that name wins when present.
    """
    if not isinstance(page, dict):
        return None
    key = page_meta(page).get("key")
    records = page.get(key if isinstance(key, str) and key in page else RECORDS_KEY)
    return records if isinstance(records, list) else None
