"""The vendor side of the composition root: each adapter gets its HTTP client, credentials and clock.

The steps' other ports (ledger, stores, alerts) come from :mod:`report_exporter.runtime`; this module stays
apart because it brings httpx, which the WriteParquet bundle must not carry.

The client's every call is bounded by the invocation's remaining time (less ``limits.CALL_MARGIN_SECONDS``),
so a vendor that hangs ends as a retried ``VendorUnavailableError`` instead of a Lambda timeout.
"""

from __future__ import annotations

from typing import Any

from report_exporter import runtime
from report_exporter.adapters.base import ReportAdapter
from report_exporter.adapters.http_client import build_client
from report_exporter.adapters.registry import adapter_factory
from report_exporter.aws.secrets import export_credentials
from report_exporter.models.exports import ExportBase


def adapter_for(export: ExportBase, context: Any = None) -> ReportAdapter:
    """The export's vendor adapter, talking to its configured base URL with its secret's credentials.

    Args:
        export: The export.
        context: The Lambda context; its remaining time bounds every vendor call.
    """
    factory = adapter_factory(export.vendor_name)
    remaining = None if context is None else (lambda: context.get_remaining_time_in_millis() / 1000)
    client = build_client(export.resolved_base_url(), transport=runtime.transport(), remaining=remaining)
    return factory(export, client, export_credentials(export.secret_name), runtime.clock())
