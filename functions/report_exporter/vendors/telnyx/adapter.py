"""Telnyx usage reports: a synchronous, paginated JSON API, kept as JSON lines (see facts.py).

Docs: https://developers.telnyx.com/api/usage-reports/get-usage-report (BETA),
rate limits: https://developers.telnyx.com/development/api-fundamentals/reliability/rate-limiting

Each raw line is one page: ``{"request": {...}, "response": <page body>}`` (see ``adapters/ndjson.py``),
so the date range a page answers travels with it.

A page that fails (429, 5xx, a timeout) is asked for again in place; when the Lambda must give up, the
next attempt resumes after the last page kept in S3 (the cursor: date range, next page, rows so far).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any

import httpx

from report_exporter.adapters.auth import BearerAuth
from report_exporter.adapters.base import (
    Credentials,
    PollResult,
    RawSink,
    RequestResult,
    ResumableWriter,
    secret_field,
)
from report_exporter.adapters.in_place import json_page
from report_exporter.adapters.ndjson import envelope_line
from report_exporter.clock import Clock
from report_exporter.errors import (
    ExporterError,
    ReportTimedOutError,
    VendorContractError,
)
from report_exporter.models.exports import ExportBase, TelnyxExport
from report_exporter.models.payloads import JobStatus, RunPlan
from report_exporter.vendors.base import Cadence
from report_exporter.vendors.telnyx.export import telnyx_time
from report_exporter.vendors.telnyx.facts import CADENCE, MAX_PAGE_SIZE

VENDOR = "telnyx"
DATASET = "telnyx_usage"
CONTENT_TYPE = "application/x-ndjson"

_USAGE = "/usage_reports"
# The largest page[size] (see facts.py): fewer, larger pages mean fewer rate-limited calls.
PAGE_SIZE = MAX_PAGE_SIZE
# A guard against a vendor that keeps announcing more pages: 5000 x 2000 rows is far beyond a month.
MAX_PAGES = 2000


@dataclass(frozen=True)
class _Cursor:
    """Where the download stands after the pages written so far (kept with each uploaded part)."""

    query: str
    """Fingerprint of what is asked (product, dimensions, metrics, filters, window): a cursor for another
    query is not resumed."""
    range: int = 0
    """Index of the date range being read (a month longer than 31 days is read as two)."""
    page: int = 1
    """The next page of that range."""
    pages: int = 1
    """The range's total_pages, as its last page said."""
    range_rows: int = 0
    total_results: int | None = None
    rows: int = 0
    """Rows written in all ranges."""

    @classmethod
    def resumed(cls, saved: Mapping[str, Any] | None, query: str) -> _Cursor | None:
        if not saved or saved.get("query") != query:
            return None
        try:
            return cls(**dict(saved))
        except TypeError:
            return None


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
        self._auth = BearerAuth(secret_field(credentials, "api_key", export))

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

    def _page(self, start: str, end: str, page: int) -> tuple[httpx.Response, Any]:
        """One page and its JSON body, asked for again in place on a transient failure (``Retry-After`` or
        ``x-ratelimit-reset`` honoured; see adapters/in_place.py)."""
        return json_page(self._client, _USAGE, vendor=VENDOR, action=f"usage report {self._export.product} page {page}",
                         clock=self._clock, params=self._params(start, end, page),
                         headers={"Accept": "application/json"}, auth=self._auth)

    def _range(self, out: ResumableWriter, start: str, end: str, at: _Cursor) -> _Cursor:
        """The pages of one date range from ``at`` on into ``out``; returns the cursor after its last page."""
        page, total_pages = at.page, at.pages
        rows, total_results = at.range_rows, at.total_results
        while page <= total_pages:
            if page > MAX_PAGES:
                raise VendorContractError(f"telnyx usage report: more than {MAX_PAGES} pages announced")
            response, body = self._page(start, end, page)
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
            at = replace(at, page=page, pages=total_pages, range_rows=rows, total_results=total_results,
                         rows=at.rows + len(data))
            out.checkpoint(asdict(at))
        if total_results is not None and rows != total_results:
            raise VendorContractError(
                f"telnyx usage report {start}..{end}: the pages held {rows} rows but meta.total_results is "
                f"{total_results}; rows were lost or duplicated between pages"
            )
        return at

    def _query(self, ranges: list[tuple[str, str]]) -> str:
        """A fingerprint of what the download asks for, whatever the page."""
        export = self._export
        asked = [export.product, export.dimensions, export.metrics, sorted(export.filters.items()),
                 export.managed_accounts, ranges]
        return hashlib.sha256(json.dumps(asked).encode()).hexdigest()[:16]

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        """Read every page of the run's window into one JSON-lines raw object, one page per line.

        Resumes after the last page kept by an earlier attempt of the same download.
        """
        # PlanRun already refused impossible windows; checking again costs nothing and keeps a hand-made
        # plan from turning into many requests.
        self._export.check_window(plan.window, now=plan.started_at)
        ranges = [(telnyx_time(start), telnyx_time(end)) for start, end in self._export.request_ranges(plan.window)]
        query = self._query(ranges)
        at = _Cursor(query=query)
        with sink.open_resumable(
            dataset=DATASET, name=f"{plan.run_name}-usage.jsonl", content_type=CONTENT_TYPE, records=lambda: at.rows
        ) as out:
            resumed = _Cursor.resumed(out.resumed, query)
            if resumed is not None:
                at = resumed
            elif out.resumed is not None:
                out.restart()
            for index, (start, end) in enumerate(ranges):
                if index < at.range:
                    continue
                if index > at.range:
                    at = replace(at, range=index, page=1, pages=1, range_rows=0, total_results=None)
                at = self._range(out, start, end, at)
