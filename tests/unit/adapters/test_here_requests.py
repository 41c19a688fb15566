"""HERE adapter: headers HERE receives, the token's lifetime, retry hints, and errors that say what went wrong.

Complements test_here.py: the vendor is the HERE simulator or a scripted MockTransport (no sockets), time is a
virtual clock.
"""

from __future__ import annotations

import email.utils
import gzip
import hashlib
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from report_exporter import limits
from report_exporter.adapters.auth import clear_token_cache
from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from report_exporter.errors import (
    DownloadExpiredError,
    ReportArchivedError,
    ReportFailedError,
    VendorAuthError,
    VendorContractError,
    VendorRequestError,
    VendorThrottledError,
    VendorUnavailableError,
)
from report_exporter.models.exports import HereExport, SenetExport
from report_exporter.models.payloads import JobStatus
from report_exporter.vendors.here.adapter import HereAdapter
from report_exporter.vendors.here.simulator import HereSimulator
from tests.fakes import MemorySink, SleepLog, plan_for
from tests.unit.adapters.test_here import BASE, NOW, TOKEN_URL

EXPORT = HereExport(name="here-main", secret_name="here/main", realm="org123456789", base_url=BASE,
                    token_url=TOKEN_URL)
CREDS = {"access_key_id": SecretStr("HKID0123456789"), "access_key_secret": SecretStr("s3cr+t/Key==")}
REPORT = "REPORT-1007"
GZIP = gzip.compress(b'"Date and time (usageDateTime)","Org ID (realmId)"\n"2026-10-01T00:00:00","org1"\n')

Answer = Callable[[httpx.Request], httpx.Response | None]


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


class Here:
    """A scripted HERE: ``answer`` first (None: a healthy answer); every request is kept."""

    def __init__(self, answer: Answer | None = None, status: str = "completed") -> None:
        self.answer = answer
        self.status = status
        self.requests: list[httpx.Request] = []
        self.tokens = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answer(request) if self.answer else None
        if answer is not None:
            return answer
        path = request.url.path
        if path == "/oauth2/token":
            self.tokens += 1
            return httpx.Response(200, json={"access_token": f"token-{self.tokens}", "token_type": "bearer",
                                             "expires_in": 86399})
        if request.method == "POST":
            return httpx.Response(201, json={"id": REPORT, "status": "inProgress"})
        if path.endswith("/output"):
            return httpx.Response(200, content=GZIP, headers={"Content-Type": "application/x-gzip"})
        return httpx.Response(200, json={"id": REPORT, "status": self.status})

    def api_calls(self) -> list[httpx.Request]:
        return [r for r in self.requests if r.url.path != "/oauth2/token"]


def here(vendor: Callable[[httpx.Request], httpx.Response], clock: VirtualClock | None = None,
         remaining: Callable[[], float] | None = None, export: HereExport = EXPORT) -> HereAdapter:
    client = build_client(BASE, transport=httpx.MockTransport(vendor), remaining=remaining)
    return HereAdapter(export, client, CREDS, clock or VirtualClock(NOW))


def on(path_end: str, response: httpx.Response, method: str = "GET") -> Answer:
    def answer(request: httpx.Request) -> httpx.Response | None:
        return response if request.method == method and request.url.path.endswith(path_end) else None

    return answer


def http_date(when: datetime) -> str:
    return email.utils.format_datetime(when, usegmt=True)


# What HERE receives.

def test_here_api_calls_ask_for_json_and_the_output_for_gzip_each_with_its_correlation_id() -> None:
    # Given a HERE that keeps every request
    vendor = Here()
    adapter = here(vendor)
    plan = plan_for(EXPORT)
    # When a report is requested, polled and downloaded
    adapter.request(plan)
    adapter.poll(plan, REPORT)
    adapter.download(plan, REPORT, MemorySink())
    # Then the API calls ask for JSON, the output for the gzip file as is, each call with its own correlation id
    create, status, output = vendor.api_calls()
    assert [(r.method, r.headers["Accept"]) for r in (create, status)] == [
        ("POST", "application/json"), ("GET", "application/json")]
    assert (output.headers["Accept"], output.headers["Accept-Encoding"]) == ("application/x-gzip", "identity")
    ids = [r.headers["X-Correlation-ID"] for r in (create, status, output)]
    assert len({str(uuid.UUID(i)) for i in ids}) == 3


def test_here_request_sends_the_month_in_utc_whatever_the_machine_time_zone(new_york_machine: None) -> None:
    # Given a machine whose local time zone is not UTC (a local run on a laptop), and an export in Berlin time
    vendor = Here()
    export = HereExport(name="here-main", secret_name="here/main", realm="org123456789", base_url=BASE,
                        token_url=TOKEN_URL, timezone="Europe/Berlin")
    # When the October report is requested
    here(vendor, export=export).request(plan_for(export, "2026-10"))
    # Then the window is sent in UTC, as HERE reads it
    (create,) = vendor.api_calls()
    assert (create.url.params["startDate"], create.url.params["endDate"]) == (
        "2026-09-30T22:00:00", "2026-10-31T22:59:59")


# The token.

def test_here_token_without_expires_in_is_used_for_at_most_an_hour() -> None:
    # Given a token endpoint that does not say how long its tokens live
    tokens: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response | None:
        if request.url.path == "/oauth2/token":
            tokens.append(f"token-{len(tokens) + 1}")
            return httpx.Response(200, json={"access_token": tokens[-1], "token_type": "bearer"})
        return None

    vendor = Here(answer, status="pending")
    clock = VirtualClock(NOW)
    adapter = here(vendor, clock)
    plan = plan_for(EXPORT)
    # When the report is requested, then polled 54 and 56 minutes later
    adapter.request(plan)
    clock.advance(54 * 60)
    adapter.poll(plan, REPORT)
    clock.advance(2 * 60)
    adapter.poll(plan, REPORT)
    # Then the token served for 55 minutes (an hour less the refresh margin), then a new one was fetched
    assert [r.headers["Authorization"] for r in vendor.api_calls()] == [
        "Bearer token-1", "Bearer token-1", "Bearer token-2"]


def test_here_token_refused_names_the_vendor_and_the_export() -> None:
    # Given a token endpoint refusing the access key
    vendor = Here(on("/oauth2/token", httpx.Response(401, json={"errorCode": 401300, "message": "Invalid"}), "POST"))
    # When a report is requested / Then the error says which call for which export was refused
    with pytest.raises(VendorAuthError) as caught:
        here(vendor).request(plan_for(EXPORT))
    assert str(caught.value).startswith(
        "here get access token for export 'here-main': credentials refused (HTTP 401): 401300")
    assert vendor.api_calls() == []


# Errors of the API calls.

def test_here_refused_create_names_the_vendor_export_and_month() -> None:
    # Given HERE refusing the report request
    body = {"title": "Bad Request", "status": 400, "code": "E706003", "cause": "The maximum time range is 95 days"}
    adapter = here(Here(on("/reports", httpx.Response(400, json=body), "POST")))
    # When / Then
    with pytest.raises(VendorRequestError) as caught:
        adapter.request(plan_for(EXPORT, "2026-10"))
    assert str(caught.value) == (
        "here create usage report for export 'here-main' 2026-10: request refused (HTTP 400): "
        "E706003; Bad Request; The maximum time range is 95 days"
    )


def test_here_throttled_create_hands_on_the_retry_after_date_counted_on_the_runs_clock() -> None:
    # Given HERE throttling the request until two minutes after the run's (virtual) now
    throttled = httpx.Response(429, headers={"Retry-After": http_date(NOW + timedelta(minutes=2))})
    adapter = here(Here(on("/reports", throttled, "POST")))
    # When / Then the state machine is told to wait those two minutes
    with pytest.raises(VendorThrottledError) as caught:
        adapter.request(plan_for(EXPORT))
    assert caught.value.retry_after == 120


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [([{"id": REPORT}], VendorContractError,
      "here create usage report for export 'here-main' 2026-10: no usable report id in the answer"),
     ({"id": REPORT, "status": "failed"}, ReportFailedError,
      f"here report {REPORT} for export 'here-main' 2026-10: HERE says generating it failed")],
    ids=["a list", "failed at once"],
)
def test_here_create_answer_that_is_no_report_says_so(body: Any, error: type[Exception], message: str) -> None:
    adapter = here(Here(on("/reports", httpx.Response(201, json=body), "POST")))
    with pytest.raises(error) as caught:
        adapter.request(plan_for(EXPORT, "2026-10"))
    assert type(caught.value) is error and str(caught.value) == message


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [(httpx.Response(500), VendorUnavailableError, f"here get usage report {REPORT}: vendor error (HTTP 500)"),
     (httpx.Response(200, json=["completed"]), VendorContractError,
      f"here get usage report {REPORT}: the answer is not a JSON object"),
     (httpx.Response(200, text="<html>gateway</html>", headers={"Content-Type": "text/html"}),
      VendorUnavailableError,
      f"here get usage report {REPORT}: expected JSON, got an unreadable answer (HTTP 200, 'text/html', 20 bytes)"
      " starting '<html>gateway</html>'")],
    ids=["5xx", "not an object", "not JSON"],
)
def test_here_poll_failure_names_the_vendor_and_the_report(
    response: httpx.Response, error: type[Exception], message: str
) -> None:
    adapter = here(Here(on(f"/reports/{REPORT}", response)))
    with pytest.raises(error) as caught:
        adapter.poll(plan_for(EXPORT), REPORT)
    assert str(caught.value) == message


def test_here_poll_of_a_report_id_that_is_not_path_safe_sends_nothing() -> None:
    vendor = Here()
    with pytest.raises(VendorContractError) as caught:
        here(vendor).poll(plan_for(EXPORT), "../../etc")
    assert str(caught.value) == "here: report id '../../etc' is not one HERE issues"
    assert vendor.requests == []


# Retry hints of a poll.

@pytest.mark.parametrize(
    ("retry_after", "seconds"),
    [("90", 90), (http_date(NOW + timedelta(minutes=5)), 300)],
    ids=["seconds", "HTTP date on the run's clock"],
)
def test_here_poll_passes_on_the_retry_after_hint(retry_after: str, seconds: float) -> None:
    # Given a pending report whose status answer asks to come back later
    answer = httpx.Response(200, json={"id": REPORT, "status": "pending"}, headers={"Retry-After": retry_after})
    # When polled
    result = here(Here(on(f"/reports/{REPORT}", answer))).poll(plan_for(EXPORT), REPORT)
    # Then the wait HERE asked for goes to CheckReport
    assert (result.status, result.retry_after) == (JobStatus.PENDING, seconds)


def test_here_poll_without_hint_has_none() -> None:
    result = here(Here(status="inProgress")).poll(plan_for(EXPORT), REPORT)
    assert (result.status, result.retry_after, result.detail) == (JobStatus.PENDING, None, "inProgress")


# Download.

@pytest.mark.parametrize("report_id", [None, "../../etc", ""])
def test_here_download_without_a_usable_report_id_sends_nothing(report_id: str | None) -> None:
    vendor = Here()
    sink = MemorySink()
    with pytest.raises(VendorContractError) as caught:
        here(vendor).download(plan_for(EXPORT), report_id, sink)
    assert str(caught.value) == "here download for export 'here-main': no usable report id"
    assert vendor.requests == [] and sink.objects == []


def test_here_download_failing_for_good_names_the_vendor_and_the_report() -> None:
    # Given an output that keeps failing
    vendor = Here(on("/output", httpx.Response(503)))
    # When downloaded / Then, once the tries in place are spent, the error names the download
    with pytest.raises(VendorUnavailableError) as caught:
        here(vendor, SleepLog(NOW)).download(plan_for(EXPORT), REPORT, MemorySink())
    assert str(caught.value) == f"here download report {REPORT}: vendor error (HTTP 503)"


def test_here_download_connection_drop_names_the_vendor_and_the_report() -> None:
    def answer(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/output"):
            raise httpx.ReadError("connection reset by peer", request=request)
        return None

    with pytest.raises(VendorUnavailableError) as caught:
        here(Here(answer), SleepLog(NOW)).download(plan_for(EXPORT), REPORT, MemorySink())
    assert str(caught.value) == f"here download report {REPORT}: connection failed (ReadError)"


def test_here_download_failure_goes_to_step_functions_when_the_invocation_has_no_time_for_another_call() -> None:
    # Given an invocation without room for one more call, and an output failing once
    failed: list[bool] = []

    def answer(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/output") and not failed:
            failed.append(True)
            return httpx.Response(503)
        return None

    vendor = Here(answer)
    room = limits.CALL_MARGIN_SECONDS + limits.CONNECT_TIMEOUT_SECONDS / 2
    sink = MemorySink()
    # When downloaded / Then the failure is handed on at once, and nothing is kept
    with pytest.raises(VendorUnavailableError, match=f"here download report {REPORT}"):
        here(vendor, remaining=lambda: room).download(plan_for(EXPORT), REPORT, sink)
    assert [r.url.path.endswith("/output") for r in vendor.api_calls()] == [True]
    assert sink.objects == []


@pytest.mark.parametrize("same_file", [True, False], ids=["same file: goes on", "file changed: starts over"])
def test_here_download_resumed_by_a_later_attempt_counts_every_record_of_the_file(same_file: bool) -> None:
    # Given a report whose output serves byte ranges, and an earlier attempt that kept the first half of the file
    # (or of a file that has changed since)
    sim = HereSimulator(rows=3_000, compresslevel=1, ranges=True)
    sim.clock = VirtualClock(NOW)
    export = HereExport(name="here-main", secret_name="here/main", realm="org123456789", base_url=sim.base_url,
                        token_url=sim.url("/oauth2/token"))
    report = sim.add_report(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
    file = b"".join(sim.gzip_body(report))
    etag = '"' + hashlib.md5(file, usedforsecurity=False).hexdigest() + '"' if same_file else '"an-older-file"'
    half = len(file) // 2
    sink = MemorySink(resume=(file[:half], {"validator": etag, "length": len(file)}))
    adapter = HereAdapter(export, build_client(sim.base_url, transport=sim.transport()),
                          {name: SecretStr(value) for name, value in sim.credentials().items()}, sim.clock)
    # When the next attempt downloads
    adapter.download(plan_for(export), report.id, sink)
    # Then it asked for the rest only (or the whole changed file), and the raw object is the file with all its
    # records counted, not the records of the part this attempt received
    assert sim.reports[report.id].served == [[half if same_file else 0, len(file)]]
    (raw,) = sink.objects
    assert sink.files[raw.key] == file and raw.records == 3_000


def test_here_archived_before_download_names_the_report_and_what_to_do() -> None:
    # Given a report archived between the last poll and the download
    sim = HereSimulator(pending_polls=0, archive_before_download=True)
    sim.clock = VirtualClock(NOW)
    export = HereExport(name="here-main", secret_name="here/main", realm="org123456789", base_url=sim.base_url,
                        token_url=sim.url("/oauth2/token"))
    adapter = HereAdapter(export, build_client(sim.base_url, transport=sim.transport()),
                          {name: SecretStr(value) for name, value in sim.credentials().items()}, sim.clock)
    plan = plan_for(export, "2026-10")
    report_id = adapter.request(plan).report_id or ""
    adapter.poll(plan, report_id)
    # When / Then the operator learns which report, and that a new run asks for a new one
    with pytest.raises(ReportArchivedError) as caught:
        adapter.download(plan, report_id, MemorySink())
    assert str(caught.value) == (
        f"here report {report_id} for export 'here-main' 2026-10: HERE archived it before it was downloaded; "
        "run the export again to request a new report"
    )


def test_here_vanished_output_says_what_the_report_status_was() -> None:
    # Given an output answering 410 while the report still says completed
    vendor = Here(on("/output", httpx.Response(410, json={"title": "Gone"})), status="completed")
    # When / Then
    with pytest.raises(DownloadExpiredError) as caught:
        here(vendor).download(plan_for(EXPORT, "2026-10"), REPORT, MemorySink())
    assert str(caught.value) == (
        f"here report {REPORT} for export 'here-main' 2026-10: the output answered HTTP 410 although the report "
        "is 'completed'"
    )


def test_here_adapter_refuses_another_vendors_export() -> None:
    senet = SenetExport(name="senet-fleet", secret_name="s/senet", application_euis=("00250C0000010001",))
    with pytest.raises(TypeError, match=r"^HereAdapter needs a HereExport$"):
        HereAdapter(senet, build_client(BASE), CREDS, VirtualClock(NOW))
