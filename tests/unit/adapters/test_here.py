"""HERE adapter: OAuth 1.0a token, report request, status mapping, raw gzip download."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.auth import clear_token_cache
from report_exporter.adapters.http_client import build_client
from report_exporter.adapters.registry import adapter_factory
from report_exporter.clock import VirtualClock
from report_exporter.errors import (
    DownloadExpiredError,
    InvalidExportError,
    ReportArchivedError,
    ReportFailedError,
    ReportTimedOutError,
    SecretError,
    VendorAuthError,
    VendorContractError,
)
from report_exporter.models.exports import HereExport, VendorName, Window
from report_exporter.models.payloads import JobStatus
from report_exporter.vendors.here.adapter import CADENCE, HereAdapter
from report_exporter.vendors.here.simulator import HereSimulator
from tests.fakes import MemorySink, plan_for

BASE = "https://usage.here.test/v2"
TOKEN_URL = "https://account.here.test/oauth2/token"
NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_process_state() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


def make_export(**overrides: Any) -> HereExport:
    fields: dict[str, Any] = {"name": "here-main", "secret_name": "here/main", "realm": "org123456789",
                              "base_url": BASE, "token_url": TOKEN_URL}
    return HereExport(**{**fields, **overrides})


def secrets_of(sim: HereSimulator) -> dict[str, SecretStr]:
    return {name: SecretStr(value) for name, value in sim.credentials().items()}


def adapter_on(sim: HereSimulator, export: HereExport | None = None, clock: VirtualClock | None = None,
               **kwargs: Any) -> HereAdapter:
    """An adapter on the simulator, both reading ``clock`` (a fresh virtual clock by default)."""
    export = export or make_export()
    sim.clock = clock or VirtualClock(NOW)
    return HereAdapter(export, build_client(export.resolved_base_url(), transport=sim.transport()), secrets_of(sim),
                       sim.clock, **kwargs)


class Recording(httpx.BaseTransport):
    """Keeps every request (with headers and body) and hands it to ``inner``."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.inner.handle_request(request)


def test_adapter_token_request_is_signed_form_post(load_fixture: Any) -> None:
    # Given a token endpoint that records what it receives
    seen: list[httpx.Request] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json=load_fixture("here/token.json"))
        return httpx.Response(201, json=load_fixture("here/create.json"))

    export = make_export(token_url="https://account.api.here.com/oauth2/token")
    creds = {"access_key_id": SecretStr("HKID0123456789"), "access_key_secret": SecretStr("s3cr+t/Key==")}
    adapter = HereAdapter(export, build_client(BASE, transport=httpx.MockTransport(vendor)), creds, VirtualClock(NOW),
                          nonce=lambda: "n0nce-42_~x", timestamp=lambda: 1700000000)

    # When a report is requested (which needs a token first)
    adapter.request(plan_for(export))

    # Then the token call is the signed form POST of the known-answer vector
    token_call = seen[0]
    assert str(token_call.url) == "https://account.api.here.com/oauth2/token"
    assert token_call.content == b"grant_type=client_credentials"
    assert token_call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert 'oauth_signature="Dc1ltPU9Kx%2Bt05foJxNFxHilXpmFp6torvpOaq0Mf%2F8%3D"' in token_call.headers["authorization"]
    # And the API call carries the token as a bearer
    assert seen[1].headers["authorization"] == "Bearer eyJhbGciOiJSUzUxMiJ9.fixture.signature"


def test_adapter_token_is_reused_across_calls_within_its_lifetime() -> None:
    # Given a simulator and two adapters for the same access key (two Lambda calls in one container)
    sim = HereSimulator(pending_polls=5)
    clock = VirtualClock(NOW)
    first, second = adapter_on(sim, clock=clock), adapter_on(sim, clock=clock)
    plan = plan_for(make_export())

    # When one requests and both poll, an hour apart
    report = first.request(plan)
    first.poll(plan, report.report_id or "")
    clock.advance(3600)
    second.poll(plan, report.report_id or "")

    # Then one token served them all
    assert sim.token_requests == 1
    assert len(sim.calls("GET", "/reports/")) == 2


def test_adapter_token_is_refreshed_after_expiry() -> None:
    # Given a token that lives 10 minutes
    sim = HereSimulator(pending_polls=5, token_lifetime=600)
    clock = VirtualClock(NOW)
    adapter = adapter_on(sim, clock=clock)
    plan = plan_for(make_export())
    report = adapter.request(plan)

    # When the (virtual) clock passes its lifetime and the report is polled
    clock.advance(601)
    result = adapter.poll(plan, report.report_id or "")

    # Then a new token was fetched before the call, and the call succeeded
    assert result.status is JobStatus.PENDING
    assert sim.token_requests == 2


def test_adapter_token_is_renewed_shortly_before_expiry() -> None:
    # Given a 24 h token
    sim = HereSimulator(pending_polls=5)
    clock = VirtualClock(NOW)
    adapter = adapter_on(sim, clock=clock)
    plan = plan_for(make_export())
    report = adapter.request(plan)

    # When less than the refresh margin is left on it
    clock.advance(86399 - 120)
    adapter.poll(plan, report.report_id or "")

    # Then it is not used any more
    assert sim.token_requests == 2


def test_adapter_revoked_token_is_replaced_once() -> None:
    # Given a cached token that the vendor revoked
    sim = HereSimulator(pending_polls=5)
    adapter = adapter_on(sim)
    plan = plan_for(make_export())
    report = adapter.request(plan)
    sim.revoke_tokens()

    # When the report is polled
    result = adapter.poll(plan, report.report_id or "")

    # Then the 401 led to one new token and a successful retry
    assert result.status is JobStatus.PENDING
    assert sim.token_requests == 2


def test_adapter_wrong_credentials_raise_vendor_auth_error() -> None:
    # Given an access key secret that does not match the key id
    sim = HereSimulator()
    creds = {"access_key_id": SecretStr(sim.access_key_id), "access_key_secret": SecretStr("not-the-secret")}
    export = make_export()
    adapter = HereAdapter(export, build_client(BASE, transport=sim.transport()), creds, VirtualClock(NOW))

    # When a report is requested
    with pytest.raises(VendorAuthError) as raised:
        adapter.request(plan_for(export))

    # Then the simulator recomputed the signature and refused it; the message names HERE's code, not secrets
    message = str(raised.value)
    assert "401300" in message and "here-main" in message
    for leak in ("not-the-secret", sim.access_key_secret, "oauth_signature", "://"):
        assert leak not in message
    assert sim.calls("POST", "/reports") == []


def test_adapter_unknown_access_key_raises_vendor_auth_error() -> None:
    # Given a key id the token endpoint does not know
    sim = HereSimulator()
    creds = {"access_key_id": SecretStr("HKIDUNKNOWN"), "access_key_secret": SecretStr(sim.access_key_secret)}
    adapter = HereAdapter(make_export(), build_client(BASE, transport=sim.transport()), creds, VirtualClock(NOW))

    # When / Then
    with pytest.raises(VendorAuthError, match="401300"):
        adapter.request(plan_for(make_export()))


def test_simulator_refuses_a_reused_nonce() -> None:
    # Given an adapter whose nonce never changes
    sim = HereSimulator(pending_polls=5)
    adapter = adapter_on(sim, nonce=lambda: "always-the-same")
    plan = plan_for(make_export())
    adapter.request(plan)

    # When a second token is needed (cache cleared, as in a new container)
    clear_token_cache()

    # Then HERE's replay protection refuses it
    with pytest.raises(VendorAuthError, match="401207"):
        adapter.request(plan)


def test_simulator_refuses_a_stale_timestamp() -> None:
    # Given a signer whose clock is years behind (HERE checks the timestamp against real time)
    sim = HereSimulator()
    adapter = adapter_on(sim, timestamp=lambda: 1_000_000_000)

    # When / Then
    with pytest.raises(VendorAuthError, match="401204"):
        adapter.request(plan_for(make_export()))


@pytest.mark.parametrize("missing", ["access_key_id", "access_key_secret"])
def test_adapter_missing_secret_field_raises_secret_error(missing: str) -> None:
    # Given a secret without one of the two fields
    creds = {"access_key_id": SecretStr("HKID"), "access_key_secret": SecretStr("s")}
    del creds[missing]

    # When / Then: the message names the field, not a value
    with pytest.raises(SecretError, match=missing):
        HereAdapter(make_export(), build_client(BASE, transport=httpx.MockTransport(lambda r: httpx.Response(500))),
                    creds, VirtualClock(NOW))


def test_adapter_request_sends_month_window_filters_and_sub_accounts() -> None:
    # Given an export with every optional filter
    sim = HereSimulator()
    export = make_export(detail_level="day", group_by=("appId", "billingTag"), charge_type="billable",
                         sub_accounts=("org112135", "org124566"))
    recording = Recording(sim.transport())
    adapter = HereAdapter(export, build_client(BASE, transport=recording), secrets_of(sim), VirtualClock(NOW))

    # When the October report is requested
    result = adapter.request(plan_for(export, "2026-10"))

    # Then the call carries the documented query, body and headers
    assert result.status is JobStatus.PENDING and result.report_id == "REPORT-1001"
    create = recording.requests[-1]
    assert create.method == "POST" and create.url.path == "/v2/usage/realms/org123456789/reports"
    assert dict(create.url.params) == {
        "startDate": "2026-10-01T00:00:00", "endDate": "2026-10-31T23:59:59", "detailLevel": "day",
        "groupBy": "appId,billingTag", "chargeType": "billable",
    }
    assert json.loads(create.content) == {"subAccounts": ["org112135", "org124566"]}
    assert uuid.UUID(create.headers["x-correlation-id"])


def test_adapter_request_without_options_sends_no_body() -> None:
    # Given the default export in a time zone east of UTC
    sim = HereSimulator()
    export = make_export(timezone="Europe/Berlin")
    recording = Recording(sim.transport())
    adapter = HereAdapter(export, build_client(BASE, transport=recording), secrets_of(sim), VirtualClock(NOW))

    # When the October report is requested
    adapter.request(plan_for(export, "2026-10"))

    # Then the local month is sent in UTC, with HERE's defaults left implicit
    create = recording.requests[-1]
    assert dict(create.url.params) == {
        "startDate": "2026-09-30T22:00:00", "endDate": "2026-10-31T22:59:59", "detailLevel": "summarized",
    }
    assert create.content == b""


@pytest.mark.parametrize(
    ("fixture", "status"),
    [("status_pending.json", JobStatus.PENDING), ("status_in_progress.json", JobStatus.PENDING),
     ("status_completed.json", JobStatus.READY)],
)
def test_adapter_poll_maps_documented_statuses(load_fixture: Any, fixture: str, status: JobStatus) -> None:
    # Given HERE answering a status fixture
    adapter = fixture_adapter(load_fixture, status_body=load_fixture(f"here/{fixture}"))

    # When / Then
    assert adapter.poll(plan_for(make_export()), "REPORT-1007").status is status


@pytest.mark.parametrize(
    ("fixture", "error"),
    [("status_failed.json", ReportFailedError), ("status_archived.json", ReportArchivedError)],
)
def test_adapter_poll_failed_and_archived_raise_distinct_errors(
    load_fixture: Any, fixture: str, error: type[Exception]
) -> None:
    # Given a terminal failure status
    adapter = fixture_adapter(load_fixture, status_body=load_fixture(f"here/{fixture}"))

    # When / Then: each maps to its own Step Functions error name
    with pytest.raises(error) as raised:
        adapter.poll(plan_for(make_export()), "REPORT-1007")
    assert type(raised.value) is error
    assert "REPORT-1007" in str(raised.value) and "here-main" in str(raised.value)
    assert not issubclass(ReportFailedError, ReportArchivedError)
    assert not issubclass(ReportArchivedError, ReportFailedError)


def test_adapter_poll_unknown_status_raises_contract_error(load_fixture: Any) -> None:
    # Given a status HERE does not document
    adapter = fixture_adapter(load_fixture, status_body={"id": "REPORT-1007", "status": "queuedForRetry"})

    # When / Then
    with pytest.raises(VendorContractError, match="queuedForRetry"):
        adapter.poll(plan_for(make_export()), "REPORT-1007")


def test_adapter_poll_without_status_raises_contract_error(load_fixture: Any) -> None:
    adapter = fixture_adapter(load_fixture, status_body={"id": "REPORT-1007"})
    with pytest.raises(VendorContractError, match="no status"):
        adapter.poll(plan_for(make_export()), "REPORT-1007")


def test_adapter_polls_simulated_report_to_ready() -> None:
    # Given a report that stays pending for two polls
    sim = HereSimulator(pending_polls=2)
    adapter = adapter_on(sim)
    plan = plan_for(make_export())
    report_id = adapter.request(plan).report_id or ""

    # When it is polled three times
    statuses = [adapter.poll(plan, report_id) for _ in range(3)]

    # Then it goes pending, inProgress, completed
    assert [s.detail for s in statuses] == ["pending", "inProgress", "completed"]
    assert statuses[-1].status is JobStatus.READY


@pytest.mark.parametrize(("knobs", "error"), [({"fail_report": True}, ReportFailedError),
                                               ({"archive_report": True}, ReportArchivedError),
                                               ({"unknown_status": "exploded"}, VendorContractError)])
def test_adapter_simulated_terminal_statuses_raise(knobs: dict[str, Any], error: type[Exception]) -> None:
    sim = HereSimulator(pending_polls=0, **knobs)
    adapter = adapter_on(sim)
    plan = plan_for(make_export())
    report_id = adapter.request(plan).report_id or ""
    with pytest.raises(error):
        adapter.poll(plan, report_id)


def test_adapter_download_stores_the_vendor_gzip_unchanged() -> None:
    # Given a completed report
    sim = HereSimulator(pending_polls=0, rows=2000)
    adapter = adapter_on(sim)
    plan = plan_for(make_export())
    report_id = adapter.request(plan).report_id or ""
    adapter.poll(plan, report_id)
    sink = MemorySink()

    # When it is downloaded
    adapter.download(plan, report_id, sink)

    # Then the raw object is HERE's gzip byte for byte, named after the report
    (raw,) = sink.objects
    assert raw.key == f"report-{report_id}.csv.gz"
    assert raw.content_type == "application/x-gzip" and raw.dataset == "here_usage"
    assert sink.files[raw.key] == b"".join(sim.gzip_body(sim.reports[report_id]))
    assert gzip.decompress(sink.files[raw.key]).count(b"\n") == 2001
    # And its data records were counted while it streamed (rows in raw, checked against Parquet later)
    assert raw.records == 2000


def test_adapter_download_keeps_gzip_even_with_content_encoding(load_fixture: Any) -> None:
    # Given an output served in pieces with Content-Encoding: gzip (as object storage sometimes labels .gz files)
    payload = gzip.compress(load_fixture("here/report_day.csv"))
    adapter = fixture_adapter(load_fixture, output=lambda: httpx.Response(
        200, headers={"Content-Type": "application/x-gzip", "Content-Encoding": "gzip"},
        content=iter([payload[:10], payload[10:]])))
    sink = MemorySink()

    # When it is downloaded
    adapter.download(plan_for(make_export()), "REPORT-1007", sink)

    # Then httpx did not inflate it on the way
    assert sink.files["report-REPORT-1007.csv.gz"] == payload


def test_adapter_download_refuses_output_that_is_not_gzip(load_fixture: Any) -> None:
    # Given an output that is plain text
    adapter = fixture_adapter(load_fixture, output=lambda: httpx.Response(
        200, headers={"Content-Type": "text/csv"}, content=load_fixture("here/report_day.csv")))
    sink = MemorySink()

    # When / Then: nothing is stored
    with pytest.raises(VendorContractError, match="not a gzip file"):
        adapter.download(plan_for(make_export()), "REPORT-1007", sink)
    assert sink.objects == []


def test_adapter_download_of_archived_report_raises_archived() -> None:
    # Given a report archived between the last poll and the download
    sim = HereSimulator(pending_polls=0, archive_before_download=True)
    adapter = adapter_on(sim)
    plan = plan_for(make_export())
    report_id = adapter.request(plan).report_id or ""
    adapter.poll(plan, report_id)

    # When / Then
    with pytest.raises(ReportArchivedError):
        adapter.download(plan, report_id, MemorySink())


def test_adapter_download_of_vanished_output_raises_download_expired(load_fixture: Any) -> None:
    # Given an output that answers 404 while the report still says completed
    adapter = fixture_adapter(load_fixture, output=lambda: httpx.Response(404, json={"title": "Not Found"}),
                              status_body=load_fixture("here/status_completed.json"))

    # When / Then
    with pytest.raises(DownloadExpiredError, match="HTTP 404"):
        adapter.download(plan_for(make_export()), "REPORT-1007", MemorySink())


def test_adapter_refuses_report_ids_that_are_not_path_safe(load_fixture: Any) -> None:
    adapter = fixture_adapter(load_fixture, create_body={"id": "../../etc", "status": "inProgress"})
    with pytest.raises(VendorContractError, match="report id"):
        adapter.request(plan_for(make_export()))


def test_export_window_over_95_days_is_refused_before_any_request() -> None:
    # Given an adapter whose transport records every request, and a 96-day window built by hand
    recording = Recording(httpx.MockTransport(lambda request: httpx.Response(500)))
    export = make_export()
    adapter_factory(VendorName.HERE)(export, build_client(BASE, transport=recording),
                                     {"access_key_id": SecretStr("k"), "access_key_secret": SecretStr("s")},
                                     VirtualClock(NOW))
    start = datetime(2026, 6, 1, tzinfo=UTC)
    window = Window(period="2026-06", start=start, end=start + timedelta(days=96))

    # When PlanRun checks the window
    with pytest.raises(InvalidExportError, match="95 days"):
        export.check_window(window, now=datetime(2026, 11, 3, tzinfo=UTC))

    # Then the vendor was never called
    assert recording.requests == []


def test_adapter_cadence_is_never_faster_than_particles() -> None:
    from report_exporter.vendors.particle.adapter import CADENCE as PARTICLE

    assert HereAdapter.cadence == CADENCE
    # At every poll and age HERE waits at least as long as Particle (and never less than a minute).
    for polls in range(40):
        for age in (0, 60, 600, 3600, 6 * 3600, 86_400):
            assert CADENCE.wait(polls, age) >= max(60, PARTICLE.wait(polls, age))
    assert HereAdapter.timeout_error is ReportTimedOutError


def fixture_adapter(
    load_fixture: Any,
    *,
    status_body: Any = None,
    create_body: Any = None,
    output: Any = None,
) -> HereAdapter:
    """An adapter over a MockTransport that answers from the fixtures."""

    def vendor(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/oauth2/token":
            return httpx.Response(200, json=load_fixture("here/token.json"))
        assert request.headers["authorization"].startswith("Bearer ")
        if request.method == "POST":
            return httpx.Response(201, json=create_body or load_fixture("here/create.json"))
        if path.endswith("/output"):
            return output() if output else httpx.Response(404)
        return httpx.Response(200, json=status_body or load_fixture("here/status_completed.json"))

    creds = {"access_key_id": SecretStr("HKID0123456789"), "access_key_secret": SecretStr("s3cr+t/Key==")}
    return HereAdapter(make_export(), build_client(BASE, transport=httpx.MockTransport(vendor)), creds,
                       VirtualClock(NOW))
