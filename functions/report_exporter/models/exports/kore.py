"""Kore export (vendors.md). Placeholder until its vendor issue lands: fields are filled in there."""

from __future__ import annotations

from typing import Literal

from report_exporter.models.exports.base import ExportBase


class KoreExport(ExportBase):
    vendor: Literal["kore"] = "kore"

    def default_base_url(self) -> str:
        return "https://programmable-wireless.api.korewireless.com"
