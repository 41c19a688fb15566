"""Senet usage export: per LoRa Application and calendar month, summary JSON and details CSV (facts: facts.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, field_validator

from report_exporter.models.exports.base import ExportBase, Window, month_window, refuse
from report_exporter.vendors.senet.facts import FOCUS_METRICS

_HEX = frozenset("0123456789ABCDEF")
# Two calls per Application run inside one DownloadReport Lambda: keep the run well inside its timeout.
MAX_APPLICATIONS = 100


def normalize_eui(value: str) -> str:
    """An EUI-64 as 16 upper-case hex digits; ``-``, ``:`` and spaces between bytes are dropped.

    Raises:
        ValueError: not 8 bytes of hex.
    """
    digits = "".join(ch for ch in value.strip().upper() if ch not in "-: ")
    if len(digits) != 16 or not set(digits) <= _HEX:
        raise ValueError(f"{value!r} is not an EUI-64 (16 hex digits, e.g. 00250C0000010001)")
    return digits


class SenetExport(ExportBase):
    """Senet Usage API: the raw Usage-API key (no ``Bearer``) in the secret field ``api_key``.

    One run asks for the run's month (``month``/``year`` of the period) for every Application EUI.
    """

    vendor: Literal["senet"] = "senet"
    application_euis: tuple[str, ...] = Field(min_length=1, max_length=MAX_APPLICATIONS)

    @field_validator("application_euis", mode="before")
    @classmethod
    def _euis(cls, value: object) -> object:
        if isinstance(value, str):
            value = (value,)
        if not isinstance(value, list | tuple):
            return value
        euis = tuple(normalize_eui(str(item)) for item in value)
        if len(set(euis)) != len(euis):
            raise ValueError("an application EUI is listed twice")
        return euis

    def priceable_metrics(self) -> frozenset[str]:
        return frozenset(FOCUS_METRICS)

    def default_base_url(self) -> str:
        return "https://api.senetco.io"

    def check_window(self, window: Window, *, now: datetime) -> None:
        # The API takes only ``month`` and ``year``: it cannot serve any other span.
        whole = month_window(window.period, self.timezone)
        if (window.start, window.end) != (whole.start, whole.end):
            raise refuse(self, window, "Senet usage is served per calendar month only (month and year parameters)")
