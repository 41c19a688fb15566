"""Particle data-operations report export: the config model of one sandbox or organization (facts: facts.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from report_exporter.models.exports.base import ExportBase, Window, refuse
from report_exporter.vendors.particle.facts import FOCUS_METRICS, LOOKBACK_DAYS, MAX_OUTSTANDING_REPORTS

# Device ids are 24 hexadecimal characters; device names are not accepted by the report's filter.
DeviceId = Annotated[str, StringConstraints(pattern=r"^[0-9a-fA-F]{24}$")]

class ParticleExport(ExportBase):
    """Particle: sandbox (``scope = "user"``) or organization (``scope = "org"`` with ``org``)."""

    vendor: Literal["particle"] = "particle"
    scope: Literal["user", "org"] = "user"
    org: str = Field(default="", pattern=r"^[A-Za-z0-9_-]*$")
    report_type: Literal["devices"] = "devices"
    devices: tuple[DeviceId, ...] = ()
    products: tuple[int, ...] = ()
    service_agreement_id: str = Field(default="", pattern=r"^[0-9A-Za-z_-]*$")

    @field_validator("report_type", mode="before")
    @classmethod
    def _devices_reports_only(cls, value: object) -> object:
        if value == "products":
            raise ValueError(
                "'products' reports are not supported yet: Particle documents no column list for them, and this "
                "exporter only publishes what it has simulated, parsed and tested. Use 'devices' (a row per "
                "device and day, with its product) and filter with 'products' if needed"
            )
        return value

    @model_validator(mode="after")
    def _org_scope_needs_org(self) -> ParticleExport:
        if self.scope == "org" and not self.org:
            raise ValueError("scope 'org' needs 'org' (the organization id or slug)")
        if self.scope == "user" and self.org:
            raise ValueError("'org' is only used with scope 'org'")
        return self

    def default_base_url(self) -> str:
        return "https://api.particle.io"

    def account_key(self) -> str:
        who = f"org/{self.org}" if self.scope == "org" else f"user/{self.secret_name}"
        return f"particle:{who}"

    def priceable_metrics(self) -> frozenset[str]:
        return frozenset(FOCUS_METRICS)

    def max_outstanding_reports(self) -> int:
        return MAX_OUTSTANDING_REPORTS  # per requester (see facts.py)

    def check_window(self, window: Window, *, now: datetime) -> None:
        if window.start < now - timedelta(days=LOOKBACK_DAYS):
            raise refuse(self, window, "Particle reports only cover the last 6 months")
