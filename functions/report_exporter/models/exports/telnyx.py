"""Telnyx export (vendors.md). Placeholder until its vendor issue lands: fields are filled in there."""

from __future__ import annotations

from typing import Literal

from report_exporter.models.exports.base import ExportBase


class TelnyxExport(ExportBase):
    vendor: Literal["telnyx"] = "telnyx"

    def default_base_url(self) -> str:
        return "https://api.telnyx.com/v2"
