"""HERE partner usage-report export: one async report per realm and month (facts: facts.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator

from report_exporter.models.exports.base import ExportBase, Window, refuse
from report_exporter.vendors.here.facts import MAX_RANGE_DAYS, TOKEN_URL

DetailLevel = Literal["summarized", "day", "month"]
ChargeType = Literal["all", "billable", "nonBillable"]
GroupBy = Literal["appId", "billingTag", "project", "resource"]
# Org ids are path segments of every call: 5-30 characters (``realmId``, see facts.py).
OrgId = Annotated[str, StringConstraints(min_length=5, max_length=30, pattern=r"^[A-Za-z0-9_-]+$")]


class HereExport(ExportBase):
    """HERE Cost Management usage report for the partner org ``realm`` (and optionally its sub-accounts)."""

    vendor: Literal["here"] = "here"
    realm: OrgId
    detail_level: DetailLevel = "summarized"
    group_by: tuple[GroupBy, ...] = ()
    charge_type: ChargeType | None = None
    sub_accounts: tuple[OrgId, ...] = ()
    token_url: str = Field(default=TOKEN_URL, pattern=r"^https?://[^\s?#]+$")

    @field_validator("detail_level", mode="before")
    @classmethod
    def _no_hour_detail(cls, value: Any) -> Any:
        # "hour level is not supported" for report requests (see facts.py).
        if value == "hour":
            raise ValueError(
                "detail_level 'hour' is not supported for HERE async usage reports; use 'day', 'month' or 'summarized'"
            )
        return value

    @field_validator("group_by")
    @classmethod
    def _unique_group_by(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("group_by lists a value twice")
        return value

    @field_validator("sub_accounts")
    @classmethod
    def _unique_sub_accounts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("sub_accounts lists an org twice")
        return value

    def priceable_metrics(self) -> None:
        # A HERE row's metric is its billed item (the report's ``name``): an open set, so any name is accepted.
        return None

    def default_base_url(self) -> str:
        return "https://usage.bam.api.here.com/v2"

    def check_window(self, window: Window, *, now: datetime) -> None:
        length = window.end - window.start
        if length > timedelta(days=MAX_RANGE_DAYS):
            raise refuse(
                self, window, f"HERE usage reports cover at most {MAX_RANGE_DAYS} days; this window is {length}"
            )
