"""Composition root for the Lambdas: builds adapters with their HTTP client and credentials."""

from __future__ import annotations

from report_exporter.adapters import adapter_factory
from report_exporter.adapters.base import ReportAdapter
from report_exporter.adapters.http_client import build_client
from report_exporter.aws.ledger import ledger
from report_exporter.aws.secrets import export_credentials
from report_exporter.models.exports import ExportBase


def adapter_for(export: ExportBase) -> ReportAdapter:
    """The export's vendor adapter, talking to its configured base URL with its secret's credentials."""
    factory = adapter_factory(export.vendor_name)
    return factory(export, build_client(export.resolved_base_url()), export_credentials(export.secret_name))


__all__ = ["adapter_for", "ledger"]
