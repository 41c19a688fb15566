"""Telnyx usage-reports export: one product, its dimensions and metrics, per month (facts: facts.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator

from report_exporter.models.exports.base import ExportBase, Window, refuse
from report_exporter.vendors.telnyx.facts import COST_METRIC, MAX_RANGE

# Product, dimension and metric names are lower-case identifiers (``sip-trunking``, ``billed_sec``).
Name = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
FilterValue = Annotated[str, StringConstraints(min_length=1, max_length=256)]


def telnyx_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:mm:ssZ`` in UTC, the format the API documents."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class TelnyxExport(ExportBase):
    """Telnyx ``GET /v2/usage_reports``: a Bearer API v2 key in the secret field ``api_key``.

    ``dimensions`` and ``metrics`` must be names that ``GET /v2/usage_reports/options?product=...``
    lists for ``product``; ``filters`` become ``filter[<dimension>]=<value>``.
    """

    vendor: Literal["telnyx"] = "telnyx"
    product: Name
    dimensions: tuple[Name, ...] = Field(min_length=1)
    metrics: tuple[Name, ...] = Field(min_length=1)
    filters: dict[Name, FilterValue] = Field(default_factory=dict)
    managed_accounts: bool = False

    @field_validator("dimensions", "metrics")
    @classmethod
    def _no_duplicates(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(names)) != len(names):
            raise ValueError("names must not repeat")
        return names

    @property
    def focus_metric(self) -> str | None:
        """The metric that is a FOCUS row's consumed quantity: the first configured one that is not ``cost``."""
        return next((metric for metric in self.metrics if metric != COST_METRIC), None)

    def priceable_metrics(self) -> frozenset[str]:
        if COST_METRIC in self.metrics or self.focus_metric is None:
            return frozenset()
        return frozenset({self.focus_metric})

    def own_cost_reason(self) -> str:
        return "Telnyx reports the cost of this export's usage (its metrics include 'cost')"

    def default_base_url(self) -> str:
        return "https://api.telnyx.com/v2"

    def check_window(self, window: Window, *, now: datetime) -> None:
        # Wall-clock length, so that a 31-day month stays acceptable when a DST change makes it 31 days
        # and one hour long in UTC; ``request_ranges`` splits that case into two requests.
        length = window.end.replace(tzinfo=None) - window.start.replace(tzinfo=None)
        if length > MAX_RANGE:
            raise refuse(self, window, f"Telnyx usage reports cover at most 31 days; this window has {length}")
        if length <= timedelta(0):
            raise refuse(self, window, "the window is empty (its end is not after its start)")

    def request_ranges(self, window: Window) -> tuple[tuple[datetime, datetime], ...]:
        """The UTC ``[start, end)`` ranges to ask for: one per 31 days (two only across a DST change)."""
        start, end = window.start.astimezone(UTC), window.end.astimezone(UTC)
        ranges = []
        while start < end:
            stop = min(start + MAX_RANGE, end)
            ranges.append((start, stop))
            start = stop
        return tuple(ranges)
