"""Particle data-operations reports: request, poll, download a pre-signed CSV (see facts.py).

Docs: https://docs.particle.io/reference/cloud-apis/api/ and the node-data-report sample
(https://github.com/particle-iot/docs/tree/3ec5e7b7652edb8fbd9a05ed0f31a3c70a579bce/src/assets/files/projects/node-data-report).

An account may have at most 3 outstanding usage-report requests; how Particle refuses a fourth is not
documented (see facts.py). The only per-account limit documented for ``POST .../usage_reports`` is
that cap, while Particle's rate limit (10,000 requests per 5 minutes per source IP) is far beyond the
few calls an export makes. So a 429 on the create call, or a 400/403/409/422 whose message speaks of
outstanding reports or a limit, is read as the cap: ``OutstandingReportCapError``, which the state
machine retries as "wait for a slot". A 429 anywhere else stays ``VendorThrottledError``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import httpx

from report_exporter.adapters.auth import BearerAuth
from report_exporter.adapters.base import Credentials, PollResult, RawSink, RequestResult, secret_field
from report_exporter.adapters.csv_records import CsvRecordCounter
from report_exporter.adapters.http_client import json_body, raise_for_status, send, vendor_detail
from report_exporter.adapters.ranged import download_file
from report_exporter.clock import Clock
from report_exporter.errors import (
    DownloadExpiredError,
    ExporterError,
    OutstandingReportCapError,
    ReportFailedError,
    ReportTimedOutError,
    VendorContractError,
)
from report_exporter.models.exports import ExportBase, ParticleExport
from report_exporter.models.payloads import JobStatus, RunPlan
from report_exporter.vendors.base import Cadence
from report_exporter.vendors.particle.facts import CADENCE, HEADER_LABELS, MAX_OUTSTANDING_REPORTS

VENDOR = "particle"
DATASET = "particle_data_operations"

_AGREEMENTS = "{prefix}/service_agreements"
_CREATE = "{prefix}/service_agreements/{agreement}/usage_reports"
_STATUS = "{prefix}/usage_reports/{report}"

# data.attributes.state; the tutorial prose says "status", so both are read.
_STATES = {
    "pending": JobStatus.PENDING,
    "processing": JobStatus.PENDING,
    "in_progress": JobStatus.PENDING,
    "available": JobStatus.READY,
}
_FAILED = {"failed", "error", "errored"}
_EXPIRED = {"expired", "deleted"}
# A link that answers one of these has expired or been revoked: ask for a fresh one once.
_LINK_GONE = {403, 404, 410}
_JSON = {"Accept": "application/json"}
# How a refused create call may say the account is at its cap (undocumented; see the module docstring).
_CAP_STATUSES = (400, 403, 409, 422, 429)
_CAP_WORDS = ("outstanding", "limit", "maximum", "too many")


def _expiry(value: object) -> datetime | None:
    """``expires_at`` (ISO 8601; reports can be downloaded for 7 days; see facts.py); None if absent or odd."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


class ParticleAdapter:
    """Sandbox (``/v1/user``) or organization (``/v1/orgs/{org}``) scope, chosen by the export."""

    cadence: Cadence = CADENCE
    timeout_error: type[ExporterError] = ReportTimedOutError

    def __init__(self, export: ExportBase, client: httpx.Client, credentials: Credentials, clock: Clock) -> None:
        if not isinstance(export, ParticleExport):
            raise TypeError("ParticleAdapter needs a ParticleExport")
        self._export = export
        self._client = client
        self._clock = clock
        self._auth = BearerAuth(secret_field(credentials, "access_token", export))
        self._prefix = f"/v1/orgs/{export.org}" if export.scope == "org" else "/v1/user"

    def _api(self, method: str, path: str, action: str, **kwargs: Any) -> Any:
        response = send(self._client, method, path, vendor=VENDOR, action=action, headers=_JSON, auth=self._auth,
                        now=self._clock.now(), **kwargs)
        return json_body(response, vendor=VENDOR, action=action)

    def _create(self, path: str, body: dict[str, Any]) -> Any:
        """``POST .../usage_reports``, telling the outstanding-report cap apart from other refusals."""
        action = "create usage report"
        response = send(self._client, "POST", path, vendor=VENDOR, action=action, ok=(200, 201, 202, *_CAP_STATUSES),
                        headers=_JSON, auth=self._auth, now=self._clock.now(), json=body)
        if response.status_code in _CAP_STATUSES:
            detail = vendor_detail(response)
            if response.status_code == 429 or any(word in detail.lower() for word in _CAP_WORDS):
                suffix = f": {detail}" if detail else ""
                raise OutstandingReportCapError(
                    f"particle {action} for export {self._export.name!r}: the account already has "
                    f"{MAX_OUTSTANDING_REPORTS} outstanding report requests (HTTP {response.status_code}{suffix}); "
                    "waiting for one to finish"
                )
            raise_for_status(response, vendor=VENDOR, action=action, now=self._clock.now())
        return json_body(response, vendor=VENDOR, action=action)

    def _agreement_id(self) -> str:
        if self._export.service_agreement_id:
            return self._export.service_agreement_id
        body = self._api("GET", _AGREEMENTS.format(prefix=self._prefix), "list service agreements")
        agreements = body.get("data") if isinstance(body, dict) else None
        if not isinstance(agreements, list):
            raise VendorContractError("particle list service agreements: no 'data' list in the answer")
        # Pick the active agreement rather than blindly data[0] (see facts.py).
        active = [
            a for a in agreements if isinstance(a, dict) and (a.get("attributes") or {}).get("state") == "active"
        ]
        if not active:
            raise VendorContractError(
                f"particle: export {self._export.name!r} has no active service agreement "
                f"({len(agreements)} agreement(s) listed); set service_agreement_id to choose one"
            )
        return str(active[0]["id"])

    def request(self, plan: RunPlan) -> RequestResult:
        """Create a devices/products report for the run's calendar month (both ends inclusive)."""
        agreement = self._agreement_id()
        body: dict[str, Any] = {
            "report_type": self._export.report_type,
            "date_period_start": plan.window.first_day.isoformat(),
            "date_period_end": plan.window.last_day.isoformat(),
        }
        if self._export.devices:
            body["devices"] = list(self._export.devices)
        if self._export.products:
            body["products"] = list(self._export.products)
        answer = self._create(_CREATE.format(prefix=self._prefix, agreement=agreement), body)
        report_id = (answer.get("data") or {}).get("id") if isinstance(answer, dict) else None
        if report_id in (None, ""):
            raise VendorContractError("particle create usage report: no data.id in the answer")
        return RequestResult(status=JobStatus.PENDING, report_id=str(report_id))

    def _status(self, report_id: str) -> tuple[str, str | None, datetime | None]:
        body = self._api("GET", _STATUS.format(prefix=self._prefix, report=report_id), "get usage report")
        attributes = ((body.get("data") or {}).get("attributes") or {}) if isinstance(body, dict) else {}
        state = attributes.get("state", attributes.get("status"))
        if not isinstance(state, str):
            raise VendorContractError(f"particle report {report_id}: no data.attributes.state in the answer")
        url = attributes.get("download_url")
        return state.lower(), url if isinstance(url, str) and url else None, _expiry(attributes.get("expires_at"))

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        state, _, expires_at = self._status(report_id)
        if state in _STATES:
            ready = _STATES[state] is JobStatus.READY
            return PollResult(status=_STATES[state], detail=state, expires_at=expires_at if ready else None)
        if state in _FAILED:
            raise ReportFailedError(
                f"particle report {report_id} for export {plan.export.name!r} {plan.period}: {state}"
            )
        if state in _EXPIRED:
            raise DownloadExpiredError(f"particle report {report_id}: the vendor says it is {state}")
        raise VendorContractError(f"particle report {report_id}: unknown report state {state!r}")

    def _current_link(self, report_id: str) -> str:
        state, url, _ = self._status(report_id)
        if state in _EXPIRED:
            raise DownloadExpiredError(f"particle report {report_id}: the vendor says it is {state}")
        if _STATES.get(state) is not JobStatus.READY or url is None:
            raise VendorContractError(f"particle report {report_id}: state {state!r} offers no download link")
        return url

    @contextmanager
    def _link_response(self, report_id: str, headers: Mapping[str, str]) -> Iterator[httpx.Response]:
        """The file at the *current* link; on 403/404/410 a fresh link once, then ``DownloadExpiredError``.

        Every request (a resumed one too) asks for the current link: a link is never kept, since it is a
        credential for the file (see facts.py).
        """
        for _attempt in range(2):
            url = self._current_link(report_id)
            # Pre-signed object storage: no Authorization header, ever.
            with self._client.stream("GET", url, headers={"Accept": "text/csv", **headers}) as response:
                if response.status_code in _LINK_GONE:
                    continue
                yield response
                return
        raise DownloadExpiredError(
            f"particle report {report_id}: the download link was refused twice (a fresh link did not help)"
        )

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        """Stream the CSV from the *current* link into the raw object.

        The link is pre-signed S3 and serves byte ranges: a download cut half-way goes on with ``Range``
        from the first byte not yet written (in place), or from the last part kept (the next attempt,
        which asks for a fresh link; the report id and byte offset are all it keeps).
        """
        if report_id is None:
            raise VendorContractError("particle download: no report id")
        counter = [CsvRecordCounter(header=HEADER_LABELS)]

        def restarted() -> None:
            counter[0] = CsvRecordCounter(header=HEADER_LABELS)

        with sink.open_resumable(dataset=DATASET, name=f"report-{report_id}.csv", content_type="text/csv",
                                 records=lambda: counter[0].records(),
                                 recount=lambda: CsvRecordCounter(header=HEADER_LABELS)) as out:
            download_file(out, lambda headers: self._link_response(report_id, headers), vendor=VENDOR,
                          action=f"download report {report_id}", clock=self._clock, client=self._client,
                          feed=lambda chunk: counter[0].feed(chunk), restarted=restarted)
