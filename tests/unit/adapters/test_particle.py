"""Particle adapter against the Particle simulator through httpx.MockTransport (no sockets)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.http_client import build_client
from report_exporter.adapters.particle import ParticleAdapter
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
from report_exporter.local.simulators.particle import ParticleSimulator
from report_exporter.models.exports import ParticleExport
from report_exporter.models.payloads import JobStatus
from tests.fakes import MemorySink, plan_for

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
    with pytest.raises(error, match="invalid date_period_start"):
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
