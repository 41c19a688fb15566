"""Telnyx usage reports: a synchronous, paginated JSON API, kept as JSON lines (vendors.md §3).

Docs: https://developers.telnyx.com/api/usage-reports/get-usage-report (BETA),
rate limits: https://developers.telnyx.com/development/api-fundamentals/reliability/rate-limiting

Each raw line is one page: ``{"request": {...}, "response": <page body>}`` (see ``adapters/ndjson.py``),
so the date range a page answers travels with it.
"""

from __future__ import annotations

from typing import Any

import httpx

from report_exporter.adapters.base import (
    Cadence,
    Credentials,
    PollResult,
    RawSink,
    RawWriter,
    RequestResult,
    secret_field,
)
from report_exporter.adapters.http_client import json_body, send
from report_exporter.adapters.ndjson import envelope_line
from report_exporter.clock import Clock
from report_exporter.errors import (
    ExporterError,
    ReportTimedOutError,
    VendorContractError,
    VendorThrottledError,
)
from report_exporter.models.exports import ExportBase, TelnyxExport
from report_exporter.models.exports.telnyx import telnyx_time
from report_exporter.models.payloads import JobStatus, RunPlan

VENDOR = "telnyx"
DATASET = "telnyx_usage"
CONTENT_TYPE = "application/x-ndjson"
CADENCE = Cadence(steps=(60,))

_USAGE = "/usage_reports"
# page[size] may be at most 5000 (default 20): fewer, larger pages mean fewer rate-limited calls.
PAGE_SIZE = 5000
# A guard against a vendor that keeps announcing more pages: 5000 x 2000 rows is far beyond a month.
MAX_PAGES = 2000
# Waits the vendor asks for between pages are slept in the Lambda up to this long; a longer hint is
# handed to Step Functions, which retries the whole task later.
MAX_INLINE_WAIT = 60.0
MAX_THROTTLED_TRIES = 5


def _count(value: Any, field: str) -> int | None:
    """A ``meta`` number; some doc renderings show them as strings, so both are accepted."""
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise VendorContractError(f"telnyx usage report: meta.{field} is not a number ({value!r})") from None
    if number < 0:
        raise VendorContractError(f"telnyx usage report: meta.{field} is negative ({number})")
    return number


class TelnyxAdapter:
    """``GET /v2/usage_reports`` for one product, paged with ``page[number]``/``page[size]``."""

    cadence: Cadence = CADENCE
    timeout_error: type[ExporterError] = ReportTimedOutError

    def __init__(self, export: ExportBase, client: httpx.Client, credentials: Credentials, clock: Clock) -> None:
        if not isinstance(export, TelnyxExport):
            raise TypeError("TelnyxAdapter needs a TelnyxExport")
        self._export = export
        self._client = client
        self._clock = clock
        self._key = secret_field(credentials, "api_key", export)

    def request(self, plan: RunPlan) -> RequestResult:
        """Synchronous API: nothing to request, the pages are read by :meth:`download`."""
        return RequestResult(status=JobStatus.READY, report_id=None)

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        raise VendorContractError("telnyx usage reports are synchronous: there is no report to poll")

    def _params(self, start: str, end: str, page: int) -> dict[str, Any]:
        export = self._export
        # Arrays go comma-separated, as in the documented example ``dimensions=direction,currency,message_type``.
        params: dict[str, Any] = {
            "product": export.product,
            "dimensions": ",".join(export.dimensions),
            "metrics": ",".join(export.metrics),
            "start_date": start,
            "end_date": end,
            "format": "json",
            "page[number]": page,
            "page[size]": PAGE_SIZE,
        }
        if export.managed_accounts:
            params["managed_accounts"] = "true"
        for dimension, value in sorted(export.filters.items()):
            params[f"filter[{dimension}]"] = value
        return params

    def _page(self, start: str, end: str, page: int) -> httpx.Response:
        """One page, sleeping through short rate-limit waits (``Retry-After`` or ``x-ratelimit-reset``)."""
        action = f"usage report {self._export.product} page {page}"
        headers = {"Authorization": f"Bearer {self._key.get_secret_value()}", "Accept": "application/json"}
        attempt = 0
        while True:
            attempt += 1
            try:
                return send(
                    self._client, "GET", _USAGE, vendor=VENDOR, action=action, ok=(200,), headers=headers,
                    params=self._params(start, end, page), now=self._clock.now(),
                )
            except VendorThrottledError as exc:
                # No hint: back off 1, 2, 4, 8 s. A long hint or too many tries: let Step Functions wait.
                wait = exc.retry_after if exc.retry_after is not None else float(2 ** (attempt - 1))
                if wait > MAX_INLINE_WAIT or attempt >= MAX_THROTTLED_TRIES:
                    raise
                self._clock.sleep(wait)

    def _range(self, out: RawWriter, start: str, end: str) -> int:
        """Every page of one date range into ``out``; returns the rows written."""
        rows = 0
        page, total_pages, total_results = 1, 1, None
        while page <= total_pages:
            if page > MAX_PAGES:
                raise VendorContractError(f"telnyx usage report: more than {MAX_PAGES} pages announced")
            response = self._page(start, end, page)
            body = json_body(response, vendor=VENDOR, action=f"usage report page {page}")
            data = body.get("data") if isinstance(body, dict) else None
            meta = body.get("meta") if isinstance(body, dict) else None
            if not isinstance(data, list) or not isinstance(meta, dict):
                raise VendorContractError(f"telnyx usage report page {page}: no 'data' list and 'meta' object")
            number = _count(meta.get("page_number"), "page_number")
            if number is not None and number != page:
                # The page parameter was ignored: reading on would duplicate rows.
                raise VendorContractError(f"telnyx usage report: asked for page {page}, got page {number}")
            total_pages = _count(meta.get("total_pages"), "total_pages") or 1
            total_results = _count(meta.get("total_results"), "total_results")
            # What the page answers, so the raw file can be read again (replay) without the config.
            request = {
                "product": self._export.product,
                "dimensions": list(self._export.dimensions),
                "metrics": list(self._export.metrics),
                "managed_accounts": self._export.managed_accounts,
                "start_date": start,
                "end_date": end,
                "page": page,
            }
            out.write(envelope_line(request, response.content))
            rows += len(data)
            page += 1
        if total_results is not None and rows != total_results:
            raise VendorContractError(
                f"telnyx usage report {start}..{end}: the pages held {rows} rows but meta.total_results is "
                f"{total_results}; rows were lost or duplicated between pages"
            )
        return rows

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        """Read every page of the run's window into one JSON-lines raw object, one page per line."""
        # PlanRun already refused impossible windows; checking again costs nothing and keeps a hand-made
        # plan from turning into many requests.
        self._export.check_window(plan.window, now=plan.started_at)
        rows = 0
        with sink.open(
            dataset=DATASET, name=f"{plan.run_name}-usage.jsonl", content_type=CONTENT_TYPE, records=lambda: rows
        ) as out:
            for start, end in self._export.request_ranges(plan.window):
                rows += self._range(out, telnyx_time(start), telnyx_time(end))
