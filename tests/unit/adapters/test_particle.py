"""Particle adapter against the Particle simulator through httpx.MockTransport (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.base import RequestResult
from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from report_exporter.errors import (
    DownloadExpiredError,
    OutstandingReportCapError,
    ReportFailedError,
    SecretError,
    VendorAuthError,
    VendorContractError,
    VendorRequestError,
    VendorThrottledError,
    VendorUnavailableError,
)
from report_exporter.models.exports import KoreExport, ParticleExport
from report_exporter.models.payloads import JobStatus
from report_exporter.vendors.particle.adapter import ParticleAdapter
from report_exporter.vendors.particle.simulator import ParticleSimulator
from tests.fakes import MemorySink, SleepLog, plan_for

USER = ParticleExport(name="particle-user", secret_name="s/particle")
ORG = ParticleExport(name="particle-org", secret_name="s/particle", scope="org", org="acme")
NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


def adapter_for(sim: ParticleSimulator, export: ParticleExport = USER, token: str | None = None) -> ParticleAdapter:
    client = build_client("http://particle.test", transport=sim.transport())
    sim.base_url = "http://particle.test"
    return ParticleAdapter(export, client, {"access_token": SecretStr(token or sim.token)}, VirtualClock(NOW))


def mock_adapter(vendor: Callable[[httpx.Request], httpx.Response]) -> ParticleAdapter:
    return ParticleAdapter(USER, build_client("http://p.test", transport=httpx.MockTransport(vendor)),
                           {"access_token": SecretStr("t")}, VirtualClock(NOW))


def test_request_creates_a_report_for_the_calendar_month_on_the_active_agreement() -> None:
    # Given a sandbox account with one terminated and one active service agreement
    sim = ParticleSimulator()
    # When a report is requested for October 2026
    result = adapter_for(sim).request(plan_for(USER, "2026-10"))
    # Then it was created on agreement 42 (the active one) for 1-31 October, both ends inclusive
    assert result.status is JobStatus.PENDING
    report = sim.reports[result.report_id or ""]
    assert (report.start.isoformat(), report.end.isoformat()) == ("2026-10-01", "2026-10-31")
    assert sim.calls("POST")[0].path == "/v1/user/service_agreements/42/usage_reports"


def test_request_uses_the_organization_scope_when_configured() -> None:
    # Given an organization export
    sim = ParticleSimulator(org="acme")
    # When a report is requested
    adapter_for(sim, ORG).request(plan_for(ORG))
    # Then every call went under /v1/orgs/acme
    assert all(call.path.startswith("/v1/orgs/acme/") for call in sim.seen)


def test_poll_reads_state_then_ready_when_available() -> None:
    # Given a report that is pending for two polls
    sim = ParticleSimulator(pending_polls=2)
    adapter = adapter_for(sim)
    job = adapter.request(plan_for(USER))
    # When polled three times
    states = [adapter.poll(plan_for(USER), job.report_id or "").status for _ in range(3)]
    # Then it is pending twice, then ready
    assert states == [JobStatus.PENDING, JobStatus.PENDING, JobStatus.READY]


@pytest.mark.parametrize(("attributes", "expected"), [
    ({"state": "pending"}, JobStatus.PENDING),
    ({"status": "pending"}, JobStatus.PENDING),
    ({"state": "processing"}, JobStatus.PENDING),
    ({"status": "available", "download_url": "https://x"}, JobStatus.READY),
])
def test_poll_accepts_state_or_status(attributes: dict[str, str], expected: JobStatus) -> None:
    # Given a vendor answer carrying the state under either name
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"id": "7", "attributes": attributes}})

    adapter = mock_adapter(vendor)
    # When polled / Then the state maps
    assert adapter.poll(plan_for(USER), "7").status is expected


def test_poll_refuses_an_unknown_state_instead_of_waiting_forever() -> None:
    # Given a state Particle never documented
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": {"id": "7", "attributes": {"state": "queued_for_moon"}}})

    adapter = mock_adapter(vendor)
    # When polled / Then it is a contract error naming the state
    with pytest.raises(VendorContractError, match="queued_for_moon"):
        adapter.poll(plan_for(USER), "7")


def test_poll_raises_report_failed_when_the_vendor_failed_it() -> None:
    sim = ParticleSimulator(pending_polls=0, fail_report=True)
    adapter = adapter_for(sim)
    job = adapter.request(plan_for(USER))
    with pytest.raises(ReportFailedError, match=f"report {job.report_id}"):
        adapter.poll(plan_for(USER), job.report_id or "")


def test_poll_throttled_raises_with_the_vendors_retry_hint() -> None:
    sim = ParticleSimulator(throttle_polls=frozenset({1}), retry_after=120)
    adapter = adapter_for(sim)
    job = adapter.request(plan_for(USER))
    with pytest.raises(VendorThrottledError) as caught:
        adapter.poll(plan_for(USER), job.report_id or "")
    assert caught.value.retry_after == 120


def test_wrong_token_is_an_auth_error_that_names_no_secret() -> None:
    # Given the vendor refuses the token
    sim = ParticleSimulator()
    # When a report is requested with a wrong token
    with pytest.raises(VendorAuthError) as caught:
        adapter_for(sim, token="wrong-token-value").request(plan_for(USER))
    # Then the message says what happened without the token
    assert "401" in str(caught.value)
    assert "wrong-token-value" not in str(caught.value)


def test_missing_token_field_is_a_secret_error() -> None:
    with pytest.raises(SecretError, match="access_token"):
        ParticleAdapter(USER, build_client("http://p.test"), {}, VirtualClock(NOW))


def _ready_report(sim: ParticleSimulator) -> tuple[ParticleAdapter, str]:
    adapter = adapter_for(sim)
    job = adapter.request(plan_for(USER))
    while adapter.poll(plan_for(USER), job.report_id or "").status is not JobStatus.READY:
        pass
    return adapter, job.report_id or ""


def test_download_streams_the_csv_without_the_vendor_token() -> None:
    # Given a ready report (the simulator's link refuses any Authorization header)
    sim = ParticleSimulator(pending_polls=0, rows=50, preamble=True)
    adapter, report_id = _ready_report(sim)
    sink = MemorySink()
    # When downloaded
    adapter.download(plan_for(USER), report_id, sink)
    # Then the raw file is kept verbatim, preamble included
    data = sink.files[f"report-{report_id}.csv"]
    assert data.startswith(b"Particle data operations report")
    assert data.count(b"\n") == 52
    # And its data records were counted while it streamed: preamble and header are not records
    assert [o.records for o in sink.objects] == [50]


@pytest.mark.parametrize("status", [403, 404, 410])
def test_download_gets_a_fresh_link_once_when_the_link_is_refused(status: int) -> None:
    # Given a link that answers 403/404/410 the first time
    sim = ParticleSimulator(pending_polls=0, rows=10, link_fail_once=status)
    adapter, report_id = _ready_report(sim)
    sink = MemorySink()
    # When downloaded
    adapter.download(plan_for(USER), report_id, sink)
    # Then a fresh link was asked for and the file arrived once
    assert sim.reports[report_id].downloads == 1
    assert len(sink.objects) == 1


def test_download_gives_up_clearly_when_a_fresh_link_is_refused_too() -> None:
    # Given every link is refused
    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/download"):
            return httpx.Response(403, text="<Error>AccessDenied</Error>")
        url = "http://p.test/download/7?X-Amz-Signature=s3cr3t-signature"
        return httpx.Response(200, json={"data": {"id": "7", "attributes": {"state": "available",
                                                                              "download_url": url}}})

    adapter = mock_adapter(vendor)
    sink = MemorySink()
    # When downloaded / Then DownloadExpiredError, no file kept, and the signed link is not in the message
    with pytest.raises(DownloadExpiredError) as caught:
        adapter.download(plan_for(USER), "7", sink)
    assert sink.objects == []
    assert "s3cr3t-signature" not in str(caught.value)
    assert "http" not in str(caught.value)


def test_no_active_agreement_is_a_clear_contract_error() -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"data": [{"id": "1", "attributes": {"state": "terminated"}}]})

    adapter = mock_adapter(vendor)
    with pytest.raises(VendorContractError, match="no active service agreement"):
        adapter.request(plan_for(USER))


def test_request_at_the_outstanding_report_cap_waits_for_a_slot() -> None:
    # Given an account whose 3 outstanding reports are all still pending
    sim = ParticleSimulator(never_ready=True)
    adapter = adapter_for(sim)
    for _ in range(3):
        adapter.request(plan_for(USER))
    # When a fourth report is requested
    with pytest.raises(OutstandingReportCapError) as caught:
        adapter.request(plan_for(USER))
    # Then the retried "wait for a slot" error names the export and the cap, and no fourth report exists
    message = str(caught.value)
    assert "'particle-user'" in message
    assert "already has 3 outstanding report requests" in message
    assert len(sim.reports) == 3


@pytest.mark.parametrize(("status", "error"), [
    (400, "Maximum number of usage reports reached"),
    (403, "Too many outstanding reports"),
    (409, "outstanding report limit"),
    (422, "report limit exceeded"),
])
def test_request_refused_for_the_cap_with_another_status_waits_for_a_slot(status: int, error: str) -> None:
    # Given a create call refused with a 4xx whose message speaks of the cap (Particle does not document it)
    def vendor(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(status, json={"ok": False, "error": error})
        return httpx.Response(200, json={"data": [{"id": "42", "attributes": {"state": "active"}}]})

    # When requested / Then it is the cap, not an auth or request error
    with pytest.raises(OutstandingReportCapError, match=f"HTTP {status}"):
        mock_adapter(vendor).request(plan_for(USER))


@pytest.mark.parametrize(("status", "error"), [(400, VendorRequestError), (403, VendorAuthError)])
def test_request_refused_for_another_reason_is_not_the_cap(status: int, error: type[Exception]) -> None:
    # Given a create call refused for something that is not the cap
    def vendor(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return httpx.Response(status, json={"ok": False, "error": "invalid date_period_start"})
        return httpx.Response(200, json={"data": [{"id": "42", "attributes": {"state": "active"}}]})

    # When requested / Then the usual error, which the state machine does not retry
    kind = "request refused" if status == 400 else "credentials refused"
    with pytest.raises(error, match=rf"^particle create usage report: {kind} \(HTTP {status}\): "
                                    r"invalid date_period_start$"):
        mock_adapter(vendor).request(plan_for(USER))


def test_429_on_the_agreements_list_stays_a_throttle() -> None:
    # Given the API throttling the service-agreements list
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"ok": False, "error": "Too Many Requests"}, headers={"Retry-After": "30"})

    # When requested / Then it is throttling with the hint, not the outstanding-report cap
    with pytest.raises(VendorThrottledError) as caught:
        mock_adapter(vendor).request(plan_for(USER))
    assert caught.value.retry_after == 30


SECRET = "Bearer_eyJhbGciOiJIUzI1NiJ9_secret_token"


@pytest.mark.parametrize(("content_type", "body"), [
    ("text/html", f"<html><body>502 Bad Gateway {SECRET} "
                  "https://signed.example/x?X-Amz-Signature=abc</body></html>".encode()),
    ("application/json", b""),
])
def test_poll_with_an_unreadable_200_is_retried_as_vendor_unavailable(content_type: str, body: bytes) -> None:
    # Given a status call answered 200 with an HTML error page (carrying secret-looking text) or nothing at all
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=body, headers={"Content-Type": content_type})

    # When polled
    with pytest.raises(VendorUnavailableError) as caught:
        mock_adapter(vendor).poll(plan_for(USER), "7")
    # Then the transient error says what came back, and nothing that could be a token or a link
    message = str(caught.value)
    assert message.startswith("particle get usage report: expected JSON")
    assert f"HTTP 200, {content_type!r}, {len(body)} bytes" in message
    assert "eyJhbGciOiJIUzI1NiJ9" not in message and "://" not in message and "Signature" not in message
    if body:
        assert "<html><body>502 Bad Gateway" in message


class FakeParticle:
    """A scripted Particle API behind httpx.MockTransport that keeps every request it receives.

    ``answers`` maps (method, path) to a response factory; anything else answers 404.
    """

    def __init__(self, answers: dict[tuple[str, str], Callable[[httpx.Request], httpx.Response]]) -> None:
        self.answers = answers
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        answer = self.answers.get((request.method, request.url.path))
        return answer(request) if answer else httpx.Response(404, json={"ok": False, "error": "Not Found"})

    def paths(self, method: str | None = None) -> list[str]:
        return [r.url.path for r in self.requests if method is None or r.method == method]

    def adapter(self, export: ParticleExport = USER, clock: VirtualClock | None = None) -> ParticleAdapter:
        return ParticleAdapter(export, build_client("http://p.test", transport=httpx.MockTransport(self)),
                               {"access_token": SecretStr("tok-1")}, clock or VirtualClock(NOW))


def answer(status: int = 200, **kwargs: object) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, **kwargs)  # type: ignore[arg-type]


AGREEMENTS = ("GET", "/v1/user/service_agreements")
CREATE_42 = ("POST", "/v1/user/service_agreements/42/usage_reports")
STATUS_7 = ("GET", "/v1/user/usage_reports/7")
ACTIVE_42 = answer(json={"data": [{"id": 42, "attributes": {"state": "active"}}]})
CREATED_7 = answer(201, json={"data": {"id": "7", "attributes": {"state": "pending"}}})


def status_7(**attributes: object) -> Callable[[httpx.Request], httpx.Response]:
    return answer(json={"data": {"id": "7", "attributes": attributes}})


def test_request_body_names_the_report_type_the_month_and_the_device_and_product_filters() -> None:
    # Given an export with a fixed service agreement and device and product filters
    export = USER.model_copy(update={"service_agreement_id": "sa-9", "devices": ("0123456789abcdef01234567",),
                                     "products": (10001, 10002)})
    vendor = FakeParticle({("POST", "/v1/user/service_agreements/sa-9/usage_reports"): CREATED_7})
    # When the October report is requested
    result = vendor.adapter(export).request(plan_for(export, "2026-10"))
    # Then Particle received one create call (no agreement lookup) for the month, with both filters
    (create,) = vendor.requests
    assert json.loads(create.content) == {"report_type": "devices", "date_period_start": "2026-10-01",
                                          "date_period_end": "2026-10-31", "devices": ["0123456789abcdef01234567"],
                                          "products": [10001, 10002]}
    assert (create.headers["authorization"], create.headers["accept"]) == ("Bearer tok-1", "application/json")
    assert result == RequestResult(status=JobStatus.PENDING, report_id="7")


def test_request_without_filters_sends_none_and_uses_the_first_active_agreement() -> None:
    # Given agreements listed as a terminated one, one without attributes, then two active ones
    vendor = FakeParticle({
        AGREEMENTS: answer(json={"data": ["junk", {"id": 40}, {"id": 41, "attributes": {"state": "terminated"}},
                                          {"id": 42, "attributes": {"state": "active"}},
                                          {"id": 43, "attributes": {"state": "active"}}]}),
        CREATE_42: CREATED_7,
    })
    # When a report is requested
    vendor.adapter().request(plan_for(USER, "2026-02"))
    # Then it is created on agreement 42 for all of February, with no device or product filter
    assert vendor.paths() == [AGREEMENTS[1], CREATE_42[1]]
    assert json.loads(vendor.requests[1].content) == {"report_type": "devices", "date_period_start": "2026-02-01",
                                                      "date_period_end": "2026-02-28"}
    assert vendor.requests[0].headers["authorization"] == "Bearer tok-1"


@pytest.mark.parametrize("body", [{"data": {"agreements": []}}, ["42"], {"items": []}])
def test_request_refuses_an_agreements_answer_without_a_data_list(body: object) -> None:
    vendor = FakeParticle({AGREEMENTS: answer(json=body)})
    with pytest.raises(VendorContractError, match=r"^particle list service agreements: no 'data' list in the answer$"):
        vendor.adapter().request(plan_for(USER))
    assert vendor.paths("POST") == []


def test_request_without_an_active_agreement_names_the_export_and_how_many_were_listed() -> None:
    vendor = FakeParticle({AGREEMENTS: answer(json={"data": [{"id": 1, "attributes": {"state": "terminated"}},
                                                             {"id": 2, "attributes": None}]})})
    with pytest.raises(VendorContractError) as caught:
        vendor.adapter().request(plan_for(USER))
    assert "export 'particle-user' has no active service agreement (2 agreement(s) listed)" in str(caught.value)


@pytest.mark.parametrize("created", [
    {"data": {"id": ""}}, {"data": {"attributes": {}}}, {"data": None}, {"id": "7"}, ["7"], "7",
])
def test_request_refuses_a_create_answer_without_a_report_id(created: object) -> None:
    vendor = FakeParticle({AGREEMENTS: ACTIVE_42, CREATE_42: answer(201, json=created)})
    with pytest.raises(VendorContractError, match=r"^particle create usage report: no data\.id in the answer$"):
        vendor.adapter().request(plan_for(USER))


def test_request_keeps_a_numeric_report_id_as_text() -> None:
    vendor = FakeParticle({AGREEMENTS: ACTIVE_42, CREATE_42: answer(201, json={"data": {"id": 7}})})
    assert vendor.adapter().request(plan_for(USER)).report_id == "7"


@pytest.mark.parametrize(("status", "body", "said"), [
    (400, {"error": "Maximum number of usage reports reached"}, ": Maximum number of usage reports reached"),
    (403, {"error": "Too many reports in progress"}, ": Too many reports in progress"),
    (409, {"error": "3 reports outstanding"}, ": 3 reports outstanding"),
    (422, {"error": "report LIMIT exceeded"}, ": report LIMIT exceeded"),
    (429, {"error": "slow down"}, ": slow down"),
    (429, None, ""),
])
def test_request_refused_for_the_cap_says_so_whichever_word_the_vendor_uses(
        status: int, body: object, said: str) -> None:
    # Given a create call refused with one cap word only (or a plain 429, which is always the cap here)
    vendor = FakeParticle({AGREEMENTS: ACTIVE_42,
                           CREATE_42: answer(status, json=body) if body else answer(status)})
    # When requested / Then the retried cap error carries the status and the vendor's words
    with pytest.raises(OutstandingReportCapError) as caught:
        vendor.adapter().request(plan_for(USER))
    assert str(caught.value) == (
        "particle create usage report for export 'particle-user': the account already has 3 outstanding report "
        f"requests (HTTP {status}{said}); waiting for one to finish")


def test_request_answered_503_with_a_date_hint_is_throttled_by_the_virtual_clock() -> None:
    # Given the create call answered 503 with Retry-After 90 s after the adapter's (virtual) now
    vendor = FakeParticle({AGREEMENTS: ACTIVE_42,
                           CREATE_42: answer(503, headers={"Retry-After": "Tue, 03 Nov 2026 06:01:30 GMT"})})
    # When requested / Then it is a throttle whose hint is counted from the virtual clock
    with pytest.raises(VendorThrottledError) as caught:
        vendor.adapter().request(plan_for(USER))
    assert caught.value.retry_after == 90


def test_poll_throttled_with_a_date_hint_counts_from_the_virtual_clock() -> None:
    vendor = FakeParticle({STATUS_7: answer(429, headers={"Retry-After": "Tue, 03 Nov 2026 06:02:00 GMT"})})
    with pytest.raises(VendorThrottledError) as caught:
        vendor.adapter().poll(plan_for(USER), "7")
    assert caught.value.retry_after == 120


@pytest.mark.parametrize(("attributes", "status", "detail"), [
    ({"state": "in_progress"}, JobStatus.PENDING, "in_progress"),
    ({"state": "Processing"}, JobStatus.PENDING, "processing"),
    ({"state": "AVAILABLE"}, JobStatus.READY, "available"),
    ({"state": "available", "status": "pending"}, JobStatus.READY, "available"),
])
def test_poll_reads_the_state_case_blind_and_prefers_state_to_status(
        attributes: dict[str, str], status: JobStatus, detail: str) -> None:
    vendor = FakeParticle({STATUS_7: status_7(**attributes)})
    result = vendor.adapter().poll(plan_for(USER), "7")
    assert (result.status, result.detail, result.retry_after) == (status, detail, None)
    (call,) = vendor.requests
    assert (call.headers["authorization"], call.headers["accept"]) == ("Bearer tok-1", "application/json")


@pytest.mark.parametrize("state", ["failed", "error", "errored", "ERROR"])
def test_poll_of_a_report_the_vendor_failed_names_the_export_and_month(state: str) -> None:
    vendor = FakeParticle({STATUS_7: status_7(state=state)})
    with pytest.raises(ReportFailedError) as caught:
        vendor.adapter().poll(plan_for(USER, "2026-10"), "7")
    assert str(caught.value) == f"particle report 7 for export 'particle-user' 2026-10: {state.lower()}"


@pytest.mark.parametrize("state", ["expired", "deleted"])
def test_poll_of_an_expired_report_is_download_expired(state: str) -> None:
    vendor = FakeParticle({STATUS_7: status_7(state=state)})
    with pytest.raises(DownloadExpiredError, match=f"particle report 7: the vendor says it is {state}"):
        vendor.adapter().poll(plan_for(USER), "7")


@pytest.mark.parametrize("body", [
    ["available"], {"data": None}, {"data": {"attributes": None}}, {"data": {"attributes": {"state": 3}}}, {},
])
def test_poll_refuses_an_answer_without_a_state(body: object) -> None:
    vendor = FakeParticle({STATUS_7: answer(json=body)})
    with pytest.raises(VendorContractError, match=r"particle report 7: no data\.attributes\.state in the answer"):
        vendor.adapter().poll(plan_for(USER), "7")


def test_an_adapter_for_another_vendors_export_is_refused() -> None:
    other = KoreExport(name="kore-main", secret_name="kore/main")
    with pytest.raises(TypeError, match=r"^ParticleAdapter needs a ParticleExport$"):
        ParticleAdapter(other, build_client("http://p.test"), {"access_token": SecretStr("t")},  # type: ignore[arg-type]
                        VirtualClock(NOW))


LINK = "http://storage.test/r/7.csv?X-Amz-Signature=sig"
CSV = b"Date,Device ID,Device Name,Product ID,Product Name,Connectivity,Data Operations,Firmware Version,Device OS\n" \
      b"2026-10-01,aa,A,1,P,cellular,5,1,6\n"


def test_download_streams_the_link_without_the_token_into_the_particle_dataset() -> None:
    vendor = FakeParticle({STATUS_7: status_7(state="available", download_url=LINK),
                           ("GET", "/r/7.csv"): answer(content=CSV, headers={"Content-Type": "text/csv"})})
    sink = MemorySink()
    vendor.adapter().download(plan_for(USER), "7", sink)
    # The status call carries the token; the link gets none, and asks for CSV
    status, link = vendor.requests
    assert status.headers["authorization"] == "Bearer tok-1"
    assert "authorization" not in link.headers and link.headers["accept"] == "text/csv"
    (obj,) = sink.objects
    assert (obj.dataset, obj.key, obj.content_type, obj.records) == ("particle_data_operations", "report-7.csv",
                                                                     "text/csv", 1)
    assert sink.files["report-7.csv"] == CSV


def test_download_asks_for_a_fresh_link_once_then_gives_up() -> None:
    # Given a vendor whose every link answers 410
    vendor = FakeParticle({STATUS_7: status_7(state="available", download_url=LINK),
                           ("GET", "/r/7.csv"): answer(410, text="gone")})
    sink = MemorySink()
    # When downloaded / Then two links were tried, each fetched fresh from the status call, and nothing kept
    with pytest.raises(DownloadExpiredError) as caught:
        vendor.adapter().download(plan_for(USER), "7", sink)
    assert vendor.paths() == [STATUS_7[1], "/r/7.csv", STATUS_7[1], "/r/7.csv"]
    assert str(caught.value) == ("particle report 7: the download link was refused twice "
                                 "(a fresh link did not help)")
    assert sink.objects == []


@pytest.mark.parametrize(("attributes", "error", "said"), [
    ({"state": "expired"}, DownloadExpiredError, "particle report 7: the vendor says it is expired"),
    ({"state": "deleted", "download_url": LINK}, DownloadExpiredError, "the vendor says it is deleted"),
    ({"state": "pending"}, VendorContractError, "particle report 7: state 'pending' offers no download link"),
    ({"state": "available"}, VendorContractError, "state 'available' offers no download link"),
    ({"state": "available", "download_url": ""}, VendorContractError, "state 'available' offers no download link"),
    ({"state": "available", "download_url": 5}, VendorContractError, "state 'available' offers no download link"),
])
def test_download_without_a_current_link_says_why(attributes: dict[str, object], error: type[Exception],
                                                  said: str) -> None:
    vendor = FakeParticle({STATUS_7: status_7(**attributes)})
    sink = MemorySink()
    with pytest.raises(error, match=said):
        vendor.adapter().download(plan_for(USER), "7", sink)
    assert vendor.paths() == [STATUS_7[1]] and sink.objects == []


def test_download_without_a_report_id_asks_nothing() -> None:
    vendor = FakeParticle({})
    with pytest.raises(VendorContractError, match=r"^particle download: no report id$"):
        vendor.adapter().download(plan_for(USER), None, MemorySink())
    assert vendor.requests == []


def test_download_link_throttled_waits_the_hint_read_on_the_virtual_clock() -> None:
    # Given a link that answers 429 "retry at 06:00:40" (an HTTP date) at 06:00:00, every time
    vendor = FakeParticle({STATUS_7: status_7(state="available", download_url=LINK),
                           ("GET", "/r/7.csv"): answer(429, headers={"Retry-After": "Tue, 03 Nov 2026 06:00:40 GMT"})})
    clock = SleepLog(NOW)
    # When the report is downloaded
    with pytest.raises(VendorThrottledError, match="particle download report 7: throttled"):
        vendor.adapter(clock=clock).download(plan_for(USER), "7", MemorySink())
    # Then the first wait in place is the 40 s the date says on the run's clock, and the link is asked again
    assert clock.sleeps[0] == 40
    assert len(vendor.paths("GET")) > 2


def test_download_link_answering_201_is_refused_not_kept() -> None:
    vendor = FakeParticle({STATUS_7: status_7(state="available", download_url=LINK),
                           ("GET", "/r/7.csv"): answer(201, content=CSV)})
    sink = MemorySink()
    with pytest.raises(VendorRequestError, match="particle download report 7: request refused \\(HTTP 201\\)"):
        vendor.adapter().download(plan_for(USER), "7", sink)
    assert sink.objects == []


@pytest.mark.parametrize(("failure", "said"), [
    (httpx.ReadTimeout("slow"), "particle download report 7: timed out"),
    (httpx.ConnectError("refused"), "particle download report 7: connection failed (ConnectError)"),
    (httpx.RemoteProtocolError("peer closed"), "particle download report 7: connection failed (RemoteProtocolError)"),
])
def test_download_transport_failures_are_transient_and_keep_nothing(failure: Exception, said: str) -> None:
    # Given a link whose body breaks off after the first chunk
    def broken(request: httpx.Request) -> httpx.Response:
        def body() -> Iterator[bytes]:
            yield CSV
            raise failure

        return httpx.Response(200, content=body())

    vendor = FakeParticle({STATUS_7: status_7(state="available", download_url=LINK), ("GET", "/r/7.csv"): broken})
    sink = MemorySink()
    # When downloaded / Then a retried VendorUnavailableError without the link, and no raw file
    with pytest.raises(VendorUnavailableError) as caught:
        vendor.adapter().download(plan_for(USER), "7", sink)
    assert str(caught.value) == said
    assert sink.objects == []


@pytest.mark.parametrize("status", [200, 202])
def test_request_accepts_any_success_status_for_the_created_report(status: int) -> None:
    vendor = FakeParticle({AGREEMENTS: ACTIVE_42, CREATE_42: answer(status, json={"data": {"id": "7"}})})
    assert vendor.adapter().request(plan_for(USER)).report_id == "7"


@pytest.mark.parametrize(("answers", "call", "said"), [
    ({AGREEMENTS: answer(500)}, "request", "particle list service agreements: vendor error (HTTP 500)"),
    ({AGREEMENTS: ACTIVE_42, CREATE_42: answer(500)}, "request",
     "particle create usage report: vendor error (HTTP 500)"),
    ({AGREEMENTS: ACTIVE_42, CREATE_42: answer(201, text="<html>maintenance</html>")}, "request",
     "particle create usage report: expected JSON, got an unreadable answer (HTTP 201, 'text/plain; charset=utf-8', "
     "24 bytes) starting '<html>maintenance</html>'"),
    ({STATUS_7: answer(502)}, "poll", "particle get usage report: vendor error (HTTP 502)"),
])
def test_vendor_failures_name_the_call_that_failed(answers: dict[tuple[str, str], Any], call: str, said: str) -> None:
    adapter = FakeParticle(answers).adapter()
    with pytest.raises(VendorUnavailableError) as caught:
        adapter.request(plan_for(USER)) if call == "request" else adapter.poll(plan_for(USER), "7")
    assert str(caught.value) == said
