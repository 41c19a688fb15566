"""HERE partner usage reports: OAuth 1.0a-signed token, then request, poll, download a gzip CSV (see facts.py).

Docs: usage API v2 OpenAPI https://docs.here.com/usage/openapi/usage-v2-openapi.yml, tutorials
https://docs.here.com/usage/docs/cost-management-tutorials; token request signing
https://developer.here.com/documentation/authentication/dev_guide/topics/request-constructing.html
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, timedelta
from typing import Any

import httpx

from report_exporter.adapters.auth import OAuth1TokenAuth, new_nonce, wall_clock_seconds
from report_exporter.adapters.base import Credentials, PollResult, RawSink, RequestResult, secret_field
from report_exporter.adapters.csv_records import CsvRecordCounter
from report_exporter.adapters.http_client import json_body, retry_after_seconds, send
from report_exporter.adapters.ranged import download_file
from report_exporter.clock import Clock
from report_exporter.errors import (
    DownloadExpiredError,
    ExporterError,
    ReportArchivedError,
    ReportFailedError,
    ReportTimedOutError,
    VendorContractError,
)
from report_exporter.models.exports import ExportBase, HereExport
from report_exporter.models.payloads import JobStatus, RunPlan
from report_exporter.vendors.base import Cadence
from report_exporter.vendors.here.facts import CADENCE

VENDOR = "here"
DATASET = "here_usage"

_REPORTS = "/usage/realms/{realm}/reports"
_REPORT = "/usage/realms/{realm}/reports/{report}"
_OUTPUT = "/usage/realms/{realm}/reports/{report}/output"
# ``startDate``/``endDate`` are ``yyyy-MM-dd'T'HH:mm:ss`` in UTC (see facts.py).
_DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"

# UsageReportStatusResponse.status (OpenAPI); compared case-insensitively.
_STATUSES = {
    "pending": JobStatus.PENDING,
    "inprogress": JobStatus.PENDING,
    "completed": JobStatus.READY,
}
_FAILED = "failed"
_ARCHIVED = "archived"
# Report ids become URL path segments and raw object names: refuse anything else.
_REPORT_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
_GONE = {404, 410}

# Tokens last 24 h (see facts.py); renew a little before the end so a call never carries a stale one.
TOKEN_REFRESH_MARGIN = timedelta(seconds=300)
# Used when the token answer has no ``expires_in``: short enough to be safe whatever HERE's lifetime is.
_DEFAULT_TOKEN_LIFETIME = timedelta(hours=1)


class HereAdapter:
    """One partner realm; the bearer token is fetched with the export's access key and cached per process."""

    cadence: Cadence = CADENCE
    timeout_error: type[ExporterError] = ReportTimedOutError

    def __init__(
        self,
        export: ExportBase,
        client: httpx.Client,
        credentials: Credentials,
        clock: Clock,
        *,
        nonce: Callable[[], str] = new_nonce,
        timestamp: Callable[[], int] = wall_clock_seconds,
    ) -> None:
        if not isinstance(export, HereExport):
            raise TypeError("HereAdapter needs a HereExport")
        self._export = export
        self._client = client
        self._clock = clock
        fields = {name: secret_field(credentials, name, export) for name in ("access_key_id", "access_key_secret")}
        # The bearer token is fetched with the access key and cached per process (see adapters/auth.py).
        self._auth = OAuth1TokenAuth(
            vendor=VENDOR, token_url=export.token_url, client_id=fields["access_key_id"],
            key_secret=fields["access_key_secret"], clock=clock, action=f"get access token for export {export.name!r}",
            margin=TOKEN_REFRESH_MARGIN, default_lifetime=_DEFAULT_TOKEN_LIFETIME, nonce=nonce, timestamp=timestamp,
        )

    @staticmethod
    def _headers(accept: str = "application/json") -> dict[str, str]:
        return {
            "Accept": accept,
            # Marked required by the usage API spec; lets HERE support trace one call (see facts.py).
            "X-Correlation-ID": str(uuid.uuid4()),
        }

    def _api(self, method: str, path: str, action: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        """A JSON call with the bearer token (a 401 on a cached one gets one retry with a new token)."""
        response = send(self._client, method, path, vendor=VENDOR, action=action, headers=self._headers(),
                        auth=self._auth, now=self._clock.now(), **kwargs)
        return json_body(response, vendor=VENDOR, action=action), response

    def _report_status(self, plan: RunPlan, report_id: str, raw: Any) -> JobStatus:
        name, period = self._export.name, plan.period
        if not isinstance(raw, str):
            raise VendorContractError(f"here report {report_id} for export {name!r} {period}: no status in the answer")
        state = raw.lower()
        if state in _STATUSES:
            return _STATUSES[state]
        if state == _FAILED:
            raise ReportFailedError(
                f"here report {report_id} for export {name!r} {period}: HERE says generating it failed"
            )
        if state == _ARCHIVED:
            raise ReportArchivedError(
                f"here report {report_id} for export {name!r} {period}: HERE archived it before it was downloaded; "
                "run the export again to request a new report"
            )
        raise VendorContractError(
            f"here report {report_id} for export {name!r} {period}: unknown report status {raw!r}"
        )

    # The three verbs.

    def request(self, plan: RunPlan) -> RequestResult:
        """Create the async usage report for the run's month: first to last second, in UTC."""
        export = self._export
        start = plan.window.start.astimezone(UTC)
        end = (plan.window.end - timedelta(seconds=1)).astimezone(UTC)
        params = {
            "startDate": start.strftime(_DATE_FORMAT),
            "endDate": end.strftime(_DATE_FORMAT),
            "detailLevel": export.detail_level,
        }
        if export.group_by:
            params["groupBy"] = ",".join(export.group_by)
        if export.charge_type:
            params["chargeType"] = export.charge_type
        extra: dict[str, Any] = {"json": {"subAccounts": list(export.sub_accounts)}} if export.sub_accounts else {}
        action = f"create usage report for export {export.name!r} {plan.period}"
        body, _ = self._api("POST", _REPORTS.format(realm=export.realm), action, params=params, **extra)
        report_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(report_id, str) or not _REPORT_ID.match(report_id):
            raise VendorContractError(f"here {action}: no usable report id in the answer")
        status = self._report_status(plan, report_id, body.get("status"))
        return RequestResult(status=status, report_id=report_id)

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        """``pending``/``inProgress`` -> PENDING, ``completed`` -> READY; ``failed``/``archived`` raise."""
        body, response = self._status(plan, report_id)
        status = self._report_status(plan, report_id, body.get("status"))
        retry_after = retry_after_seconds(response, now=self._clock.now())
        return PollResult(status=status, retry_after=retry_after, detail=str(body.get("status")))

    def _status(self, plan: RunPlan, report_id: str) -> tuple[dict[str, Any], httpx.Response]:
        if not _REPORT_ID.match(report_id):
            raise VendorContractError(f"here: report id {report_id!r} is not one HERE issues")
        path = _REPORT.format(realm=self._export.realm, report=report_id)
        body, response = self._api("GET", path, f"get usage report {report_id}")
        if not isinstance(body, dict):
            raise VendorContractError(f"here get usage report {report_id}: the answer is not a JSON object")
        return body, response

    @contextmanager
    def _output(self, plan: RunPlan, report_id: str, headers: Mapping[str, str]) -> Iterator[httpx.Response]:
        """``/output`` with the bearer token; 404/410 explained."""
        path = _OUTPUT.format(realm=self._export.realm, report=report_id)
        # identity: the file is gzip already, a second content-coding layer would only cost CPU.
        sent = {**self._headers("application/x-gzip"), "Accept-Encoding": "identity", **headers}
        # If /output redirects to object storage, httpx drops Authorization on the cross-origin hop.
        with self._client.stream("GET", path, headers=sent, auth=self._auth) as response:
            if response.status_code in _GONE:
                gone = response.status_code
            else:
                yield response
                return
        self._explain_gone(plan, report_id, gone)

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        """Stream ``/output`` (a gzip CSV) into the sink byte for byte; it is never inflated here.

        HERE does not document byte ranges on ``/output``: a download cut half-way goes on with ``Range``
        only if the answer offered them (``Accept-Ranges: bytes``, or a 206), and starts over otherwise.
        """
        if report_id is None or not _REPORT_ID.match(report_id):
            raise VendorContractError(f"here download for export {self._export.name!r}: no usable report id")
        action = f"download report {report_id}"
        counter = [CsvRecordCounter(gzip=True)]

        def restarted() -> None:
            counter[0] = CsvRecordCounter(gzip=True)
            counting[0] = True

        def feed(chunk: bytes) -> None:
            if counting[0]:
                counter[0].feed(chunk)

        def gzip_magic(head: bytes) -> None:
            if not head.startswith(_GZIP_MAGIC):
                raise VendorContractError(f"here download report {report_id}: the output is not a gzip file")

        with sink.open_resumable(dataset=DATASET, name=f"report-{report_id}.csv.gz", content_type="application/x-gzip",
                                 records=lambda: counter[0].records(),
                                 recount=lambda: CsvRecordCounter(gzip=True)) as out:
            # Bytes kept by an earlier attempt: this one goes on mid-stream, where gzip cannot be inflated; the
            # sink recounts the completed object (``recount``). Counting starts again if the file starts over.
            counting = [out.tell() == 0]
            # raw: with ``Content-Encoding: gzip`` iter_bytes would inflate the file on the way and the raw object
            # would no longer be the vendor's .csv.gz.
            download_file(out, lambda headers: self._output(plan, report_id, headers), vendor=VENDOR, action=action,
                          clock=self._clock, client=self._client, feed=feed,
                          restarted=restarted, raw=True, check_head=gzip_magic, head_size=len(_GZIP_MAGIC))

    def _explain_gone(self, plan: RunPlan, report_id: str, status: int | None) -> None:
        """``/output`` answered 404/410: say whether HERE archived the report or the file just vanished."""
        body, _ = self._status(plan, report_id)
        self._report_status(plan, report_id, body.get("status"))  # raises for archived or failed
        raise DownloadExpiredError(
            f"here report {report_id} for export {self._export.name!r} {plan.period}: the output answered "
            f"HTTP {status} although the report is {body.get('status')!r}"
        )
