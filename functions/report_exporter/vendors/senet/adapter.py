"""Senet Usage API: per Application and month, a JSON summary and a CSV details file (see facts.py).

Docs: https://docs.senetco.io/ap/appUsageApi/ (endpoints, raw key in ``Authorization``, status codes)
and https://docs.senetco.io/ap/appUsage/ (the prior month's file is generated on the 1st).

The API is synchronous, but a 404 for the month that just ended means "not generated yet" (it also
means "unknown Application or no usage", which the API does not tell apart). So a run for the month
before it started waits for the data the way an asynchronous vendor waits for a report: RequestReport
returns PENDING with the pseudo report id ``availability`` and CheckReport probes again on a slow
cadence until the export's deadline, after which it raises ``ReportNotAvailableError``. For older
months a 404 cannot be "not yet", so it fails at once.
"""

from __future__ import annotations

from typing import Any

import httpx

from report_exporter.adapters.auth import RawKeyAuth
from report_exporter.adapters.base import Credentials, PollResult, RawSink, RequestResult, secret_field
from report_exporter.adapters.csv_records import CsvRecordCounter
from report_exporter.adapters.http_client import json_body, raise_for_status, send, stream
from report_exporter.adapters.in_place import PAGES
from report_exporter.adapters.ndjson import envelope_line
from report_exporter.clock import Clock
from report_exporter.errors import (
    ExporterError,
    ReportNotAvailableError,
    ReportNotAvailableYetError,
    VendorContractError,
    VendorRequestError,
)
from report_exporter.models.exports import ExportBase, SenetExport, previous_period
from report_exporter.models.payloads import JobStatus, RunPlan
from report_exporter.vendors.base import Cadence
from report_exporter.vendors.senet.facts import CADENCE

VENDOR = "senet"
SUMMARY_DATASET = "senet_application_month"
DEVICE_DATASET = "senet_device_month"
AVAILABILITY = "availability"
"""Pseudo report id of a run that waits for the month's data to be generated."""

_SUMMARY = "/rest/integration/usage/summary"
_DETAILS = "/rest/integration/usage/details"
_CHUNK = 1 << 20
# A summary or a details file that fails (429, 5xx, a timeout, a dropped connection) is asked for again in
# place, as a page is, with Retry-After when given: one Application's fault does not fetch the others again.
_IN_PLACE = PAGES


class SenetAdapter:
    """``/summary`` and ``/details`` for every Application EUI of the export."""

    cadence: Cadence = CADENCE
    timeout_error: type[ExporterError] = ReportNotAvailableError

    def __init__(self, export: ExportBase, client: httpx.Client, credentials: Credentials, clock: Clock) -> None:
        if not isinstance(export, SenetExport):
            raise TypeError("SenetAdapter needs a SenetExport")
        self._export = export
        self._client = client
        self._clock = clock
        # The raw key, no "Bearer" prefix (docs above: curl -H 'Authorization: <API_KEY_TO_USE>').
        self._auth = RawKeyAuth(secret_field(credentials, "api_key", export))

    @staticmethod
    def _params(plan: RunPlan, eui: str) -> dict[str, Any]:
        year, month = plan.period.split("-")
        return {"eui": eui, "month": int(month), "year": int(year)}

    @staticmethod
    def _just_ended(plan: RunPlan) -> bool:
        """Whether the period is the month before the run started: only then can a 404 mean "not yet"."""
        return previous_period(plan.started_at, plan.export.timezone) == plan.period

    def _missing(self, plan: RunPlan, eui: str) -> Exception:
        where = f"senet application {eui} (export {self._export.name!r}) {plan.period}"
        if self._just_ended(plan):
            return ReportNotAvailableYetError(f"{where}: no usage data yet (HTTP 404); Senet generates it on the 1st")
        return VendorRequestError(f"{where}: application not found or no usage data for that month (HTTP 404)")

    def _available(self, plan: RunPlan) -> bool:
        """Probe the first Application's summary: 200 means the month's data exists, 404 means not (yet)."""
        eui = self._export.application_euis[0]
        response = send(
            self._client, "GET", _SUMMARY, vendor=VENDOR, action=f"usage summary {eui}", ok=(200, 404),
            headers={"Accept": "application/json"}, auth=self._auth, params=self._params(plan, eui),
            now=self._clock.now(),
        )
        return response.status_code == 200

    def request(self, plan: RunPlan) -> RequestResult:
        """READY when the month's data is there; PENDING (``availability``) when it is not generated yet.

        Raises:
            VendorRequestError: 404 for a month older than the one just ended (unknown application or no data).
        """
        if self._available(plan):
            return RequestResult(status=JobStatus.READY, report_id=None)
        if self._just_ended(plan):
            return RequestResult(status=JobStatus.PENDING, report_id=AVAILABILITY)
        raise self._missing(plan, self._export.application_euis[0])

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        """Probe again: READY once the summary answers 200."""
        if report_id != AVAILABILITY:
            raise VendorContractError(f"senet: unknown report id {report_id!r} (only {AVAILABILITY!r} is polled)")
        if self._available(plan):
            return PollResult(status=JobStatus.READY, detail="available")
        return PollResult(status=JobStatus.PENDING, detail="not yet available")

    def _summaries(self, plan: RunPlan, sink: RawSink) -> None:
        lines = 0
        with sink.open(
            dataset=SUMMARY_DATASET, name=f"{plan.run_name}-summary.jsonl", content_type="application/x-ndjson",
            records=lambda: lines,
        ) as out:
            for eui in self._export.application_euis:
                action = f"usage summary {eui}"
                params = self._params(plan, eui)

                def once(action: str = action, params: dict[str, Any] = params, eui: str = eui) -> httpx.Response:
                    response = send(
                        self._client, "GET", _SUMMARY, vendor=VENDOR, action=action, ok=(200, 404),
                        headers={"Accept": "application/json"}, auth=self._auth, params=params, now=self._clock.now(),
                    )
                    if response.status_code == 404:
                        raise self._missing(plan, eui)
                    if not isinstance(json_body(response, vendor=VENDOR, action=action), dict):
                        raise VendorContractError(f"senet {action}: expected a JSON object")
                    return response

                response = _IN_PLACE.call(once, clock=self._clock, client=self._client)
                out.write(envelope_line(params, response.content))
                lines += 1

    def _details(self, plan: RunPlan, eui: str, sink: RawSink) -> None:
        """One Application's details CSV; a transient failure drops what was written and asks again in place."""
        _IN_PLACE.call(lambda: self._details_once(plan, eui, sink), clock=self._clock, client=self._client)

    def _details_once(self, plan: RunPlan, eui: str, sink: RawSink) -> None:
        action = f"usage details {eui}"
        counter = CsvRecordCounter()
        with stream(self._client, "GET", _DETAILS, vendor=VENDOR, action=action, params=self._params(plan, eui),
                    headers={"Accept": "text/csv"}, auth=self._auth) as response:
            if response.status_code == 404:
                raise self._missing(plan, eui)
            raise_for_status(response, vendor=VENDOR, action=action, ok=(200,), now=self._clock.now())
            with sink.open(
                dataset=DEVICE_DATASET, name=f"{plan.run_name}-details-{eui}.csv", content_type="text/csv",
                records=counter.records, params={"application_eui": eui},
            ) as out:
                for chunk in response.iter_bytes(_CHUNK):
                    counter.feed(chunk)
                    out.write(chunk)

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        """One JSON-lines object of summaries (a line per Application), then one details CSV per Application."""
        self._summaries(plan, sink)
        for eui in self._export.application_euis:
            self._details(plan, eui, sink)
