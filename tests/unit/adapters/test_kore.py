"""KORE adapter: OAuth2 token cache, pagination through next_page_url, raw JSON lines, error mapping."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.auth import clear_token_cache
from report_exporter.adapters.http_client import build_client
from report_exporter.adapters.registry import ADAPTERS
from report_exporter.clock import VirtualClock
from report_exporter.errors import SecretError, VendorAuthError, VendorContractError, VendorThrottledError
from report_exporter.models.exports import KoreExport, VendorName
from report_exporter.models.payloads import JobStatus
from report_exporter.vendors.kore.adapter import CONTENT_TYPE, DATASET, KoreAdapter
from report_exporter.vendors.kore.simulator import KoreSimulator
from tests.fakes import MemorySink, plan_for

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vendors" / "kore"
BASE = "https://programmable-wireless.api.korewireless.com"
TOKEN_URL = "https://api.korewireless.com/api-services/v1/auth/token"
PERIOD = "2024-05"  # the fixtures' month
CREDS = {"client_id": SecretStr("client-abc"), "client_secret": SecretStr("s3cr3t-value")}
NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def kore_export(base_url: str = BASE, **fields: Any) -> KoreExport:
    return KoreExport(name="kore-main", secret_name="kore/main", base_url=base_url, **fields)


def sim_adapter(sim: KoreSimulator, clock: VirtualClock | None = None, **fields: Any) -> tuple[KoreAdapter, KoreExport]:
    """An adapter on the simulator, both reading ``clock`` (a fresh virtual clock by default)."""
    sim.clock = clock or VirtualClock(NOW)
    export = kore_export(sim.base_url, token_url=sim.token_url, **fields)
    creds = {k: SecretStr(v) for k, v in sim.credentials().items()}
    return KoreAdapter(export, build_client(sim.base_url, transport=sim.transport()), creds, sim.clock), export


def mock_adapter(vendor: Any, clock: VirtualClock | None = None) -> KoreAdapter:
    return KoreAdapter(kore_export(), build_client(BASE, transport=httpx.MockTransport(vendor)), CREDS,
                       clock or VirtualClock(NOW))


def lines(data: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in data.splitlines()]


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


def test_registry_maps_kore_to_kore_adapter() -> None:
    # Given the vendor registry / When KORE is looked up / Then it is this adapter
    assert ADAPTERS[VendorName.KORE] is KoreAdapter


def test_adapter_missing_client_secret_raises_secret_error() -> None:
    # Given a secret with only a client id
    export = kore_export()
    # When the adapter is built / Then the secret is named, without any value
    with pytest.raises(SecretError, match="'client_secret'") as caught:
        KoreAdapter(export, build_client(BASE), {"client_id": SecretStr("client-abc")}, VirtualClock(NOW))
    assert "client-abc" not in str(caught.value)


def test_download_follows_next_page_url_across_three_pages_and_keeps_bodies_verbatim() -> None:
    # Given KORE answering a token, then three pages linked by absolute next_page_url (two meta shapes)
    pages = [fixture(f"usage_records_page{n}.json") for n in (1, 2, 3)]
    seen: list[httpx.Request] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/api-services/v1/auth/token":
            return httpx.Response(200, content=fixture("token.json"), headers={"Content-Type": "application/json"})
        page = {None: 0, "PT2": 1, "PT3": 2}[request.url.params.get("PageToken")]
        return httpx.Response(200, content=pages[page], headers={"Content-Type": "application/json"})

    adapter = mock_adapter(vendor)
    sink = MemorySink()
    # When the run's month is downloaded
    adapter.download(plan_for(adapter._export, PERIOD), None, sink)
    # Then one raw JSON-lines file holds the three page bodies, one per line, byte for byte (bar newlines)
    (name,) = sink.files
    assert name == "kore-main-2024-05-usage-records.jsonl"
    (raw_object,) = sink.objects
    assert (raw_object.dataset, raw_object.content_type, raw_object.records) == (DATASET, CONTENT_TYPE, 4)
    raw = sink.files[name].splitlines()
    assert len(raw) == 3
    assert raw[1] == pages[1].strip()
    assert [json.loads(line) for line in raw] == [json.loads(p) for p in pages]
    # And the first request asked for the whole month, End inclusive, in UTC, 1000 records a page
    api = [r for r in seen if r.url.path == "/v1/UsageRecords"]
    assert len(api) == 3
    assert dict(api[0].url.params) == {
        "Start": "2024-05-01T00:00:00Z", "End": "2024-05-31T23:59:59Z", "Granularity": "daily", "PageSize": "1000",
    }
    assert all(r.headers["Authorization"] == "Bearer fixture-access-token-1" for r in api)


def test_download_simulator_loses_and_duplicates_no_record_over_many_pages() -> None:
    # Given a simulator serving 2,500 hourly-spaced records at most 1,000 a page (three pages)
    sim = KoreSimulator(records=2500, page_size=1000)
    adapter, export = sim_adapter(sim, granularity="hourly")
    sink = MemorySink()
    # When the month is downloaded
    plan = plan_for(export, PERIOD)
    adapter.download(plan, None, sink)
    # Then every served record is in the raw file exactly once, in order
    (data,) = sink.files.values()
    pages = lines(data)
    assert len(pages) == 3
    got = [r["period"]["start"] for page in pages for r in page["usage_records"]]
    start, end = export.query_range(plan.window)
    expected = [r["period"]["start"] for r in sim.usage_records(start, end, "hourly")]
    assert got == expected
    assert len(set(got)) == 2500
    assert sink.objects[0].records == 2500


def test_download_tolerates_the_guidelines_meta_shape() -> None:
    # Given a simulator that pages with KORE's general meta (count, page_number) and 3 records a page
    sim = KoreSimulator(page_size=3, meta_style="guidelines")
    adapter, export = sim_adapter(sim)
    sink = MemorySink()
    # When a 31-day month is downloaded
    adapter.download(plan_for(export, PERIOD), None, sink)
    # Then all 31 daily records arrive over 11 pages
    (data,) = sink.files.values()
    assert sum(len(p["usage_records"]) for p in lines(data)) == 31
    assert len(sim.calls("GET", "/v1/UsageRecords")) == 11


def test_download_uses_the_per_sim_endpoint_when_sim_sid_is_set() -> None:
    # Given an export for one SIM
    sim = KoreSimulator()
    sim_sid = "DE" + "ab" * 16
    adapter, export = sim_adapter(sim, sim_sid=sim_sid)
    sink = MemorySink()
    # When it downloads
    adapter.download(plan_for(export, PERIOD), None, sink)
    # Then it called /v1/Sims/{sid}/UsageRecords and the records name the SIM
    assert sim.calls("GET", f"/v1/Sims/{sim_sid}/UsageRecords")
    (data,) = sink.files.values()
    assert {r["sim_sid"] for p in lines(data) for r in p["usage_records"]} == {sim_sid}


def test_request_with_wrong_credentials_raises_vendor_auth_error_without_secrets() -> None:
    # Given a simulator that does not know these client credentials
    sim = KoreSimulator()
    export = kore_export(sim.base_url, token_url=sim.token_url)
    adapter = KoreAdapter(export, build_client(sim.base_url, transport=sim.transport()), CREDS, VirtualClock(NOW))
    # When the run asks for its report
    with pytest.raises(VendorAuthError) as caught:
        adapter.request(plan_for(export, PERIOD))
    # Then the error names the export, the secret and KORE's reason, and carries no secret or URL
    message = str(caught.value)
    assert "kore-main" in message and "kore/main" in message and "unauthorized_client" in message
    assert "s3cr3t-value" not in message and "client-abc" not in message and "://" not in message
    assert sim.tokens_issued == 0


def test_token_refused_with_400_invalid_client_is_an_auth_error() -> None:
    # Given a token endpoint answering the OAuth-standard 400 invalid_client
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "invalid_client", "error_description": "bad client client-abc"})

    adapter = mock_adapter(vendor)
    # When a token is needed / Then VendorAuthError, with the echoed client id blanked
    with pytest.raises(VendorAuthError, match="invalid_client") as caught:
        adapter.download(plan_for(adapter._export, PERIOD), None, MemorySink())
    assert "client-abc" not in str(caught.value)


def test_request_is_ready_at_once_and_warms_the_token_cache() -> None:
    # Given a healthy simulator
    sim = KoreSimulator()
    adapter, export = sim_adapter(sim)
    # When the report is requested, then downloaded
    result = adapter.request(plan_for(export, PERIOD))
    adapter.download(plan_for(export, PERIOD), result.report_id, MemorySink())
    # Then it is READY with no report id, and one token served both calls
    assert result.status is JobStatus.READY and result.report_id is None
    assert sim.tokens_issued == 1


def test_token_is_reused_across_adapters_until_it_expires() -> None:
    # Given tokens that live 600 s, and two adapters (two Lambda calls) for the same client
    sim = KoreSimulator(expires_in=600)
    clock = VirtualClock(NOW)
    first, export = sim_adapter(sim, clock)
    second, _ = sim_adapter(sim, clock)
    # When both download within the token's lifetime
    first.download(plan_for(export, PERIOD), None, MemorySink())
    clock.advance(300)
    second.download(plan_for(export, PERIOD), None, MemorySink())
    # Then one token was issued
    assert sim.tokens_issued == 1
    # When time passes the token's expiry (less the refresh margin)
    clock.advance(300)
    second.download(plan_for(export, PERIOD), None, MemorySink())
    # Then a new token was fetched before the old one could be refused
    assert sim.tokens_issued == 2


def test_token_is_refreshed_shortly_before_expiry() -> None:
    # Given a 3600 s token
    sim = KoreSimulator(expires_in=3600)
    clock = VirtualClock(NOW)
    adapter, export = sim_adapter(sim, clock)
    adapter.request(plan_for(export, PERIOD))
    # When 59 minutes 30 seconds pass (inside the 60 s margin)
    clock.advance(3570)
    adapter.request(plan_for(export, PERIOD))
    # Then a fresh token was asked for
    assert sim.tokens_issued == 2


def test_api_401_on_a_cached_token_retries_once_with_a_fresh_token() -> None:
    # Given a cached token that KORE has since revoked
    sim = KoreSimulator()
    adapter, export = sim_adapter(sim)
    adapter.request(plan_for(export, PERIOD))
    sim.revoke_tokens()
    sink = MemorySink()
    # When the download runs
    adapter.download(plan_for(export, PERIOD), None, sink)
    # Then it dropped the cached token, fetched another and got every record
    assert sim.tokens_issued == 2
    (data,) = sink.files.values()
    assert sum(len(p["usage_records"]) for p in lines(data)) == 31


def test_api_401_on_a_fresh_token_raises_vendor_auth_error() -> None:
    # Given a token endpoint that issues tokens the API then refuses
    calls = {"token": 0, "api": 0}

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.host == "api.korewireless.com":
            calls["token"] += 1
            return httpx.Response(200, content=fixture("token.json"))
        calls["api"] += 1
        return httpx.Response(401, content=fixture("error_401.json"))

    adapter = mock_adapter(vendor)
    # When the download runs / Then the refusal is an auth error, after exactly one try with that token
    with pytest.raises(VendorAuthError, match="HTTP 401"):
        adapter.download(plan_for(adapter._export, PERIOD), None, MemorySink())
    assert calls == {"token": 1, "api": 1}


def test_api_401_twice_after_refresh_raises_vendor_auth_error() -> None:
    # Given a cached token, and an API that refuses every token
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    api_calls: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, json={"access_token": next(tokens), "expires_in": 3600, "token_type": "Bearer"})
        api_calls.append(request.headers["Authorization"])
        return httpx.Response(401, content=fixture("error_401.json"))

    adapter = mock_adapter(vendor)
    adapter.request(plan_for(adapter._export, PERIOD))
    # When the download runs / Then the cached token and one fresh token were tried, then it gave up
    with pytest.raises(VendorAuthError):
        adapter.download(plan_for(adapter._export, PERIOD), None, MemorySink())
    assert api_calls == ["Bearer tok-1", "Bearer tok-2"]


def test_next_page_url_to_a_foreign_host_is_refused_and_never_called() -> None:
    # Given a first page whose next_page_url points at another host
    body = json.loads(fixture("usage_records_page1.json"))
    body["meta"]["next_page_url"] = "https://evil.example.com/v1/UsageRecords?Page=1"
    hosts: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        hosts.append(request.url.host)
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, content=fixture("token.json"))
        return httpx.Response(200, json=body)

    adapter = mock_adapter(vendor)
    sink = MemorySink()
    # When the download follows the pages / Then it refuses, names the hosts, and keeps no raw file
    with pytest.raises(VendorContractError, match=r"evil\.example\.com") as caught:
        adapter.download(plan_for(adapter._export, PERIOD), None, sink)
    assert "https://" not in str(caught.value)
    assert "evil.example.com" not in hosts
    assert sink.files == {}


def test_next_page_url_downgrading_to_http_is_refused() -> None:
    # Given a next_page_url on the right host but over plain HTTP
    body = json.loads(fixture("usage_records_page1.json"))
    body["meta"]["next_page_url"] = body["meta"]["next_page_url"].replace("https://", "http://")

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, content=fixture("token.json"))
        return httpx.Response(200, json=body)

    adapter = mock_adapter(vendor)
    # When the download follows it / Then it is refused
    with pytest.raises(VendorContractError, match="next_page_url"):
        adapter.download(plan_for(adapter._export, PERIOD), None, MemorySink())


def test_next_page_url_that_repeats_a_page_is_refused() -> None:
    # Given pages whose next_page_url always points at the same page
    body = json.loads(fixture("usage_records_page1.json"))

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, content=fixture("token.json"))
        return httpx.Response(200, json=body)

    adapter = mock_adapter(vendor)
    # When the download follows them / Then the loop is cut
    with pytest.raises(VendorContractError, match="repeats"):
        adapter.download(plan_for(adapter._export, PERIOD), None, MemorySink())


def test_page_without_usage_records_is_a_contract_error() -> None:
    # Given a 200 answer that is not a usage list
    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, content=fixture("token.json"))
        return httpx.Response(200, json={"message": "maintenance"})

    adapter = mock_adapter(vendor)
    # When downloaded / Then VendorContractError
    with pytest.raises(VendorContractError, match="usage_records"):
        adapter.download(plan_for(adapter._export, PERIOD), None, MemorySink())


def test_short_retry_after_between_pages_is_waited_out_in_the_lambda() -> None:
    # Given a simulator that throttles page 2 once with Retry-After: 2, and virtual time
    clock = VirtualClock(NOW)
    sim = KoreSimulator(page_size=10, throttle_pages=frozenset({2}), retry_after=2)
    adapter, export = sim_adapter(sim, clock)
    sink = MemorySink()
    # When the download runs
    adapter.download(plan_for(export, PERIOD), None, sink)
    # Then it waited 2 s once, on the adapter's clock, and still got all 31 records
    assert clock.now() - NOW == timedelta(seconds=2)
    assert clock.slept == 2
    (data,) = sink.files.values()
    assert sum(len(p["usage_records"]) for p in lines(data)) == 31


def test_long_retry_after_is_left_to_step_functions() -> None:
    # Given a simulator that throttles page 1 with Retry-After: 120
    clock = VirtualClock(NOW)
    sim = KoreSimulator(throttle_pages=frozenset({1}), retry_after=120)
    adapter, export = sim_adapter(sim, clock)
    # When the download runs / Then the throttle is raised for the state machine's retry, without waiting
    with pytest.raises(VendorThrottledError) as caught:
        adapter.download(plan_for(export, PERIOD), None, MemorySink())
    assert caught.value.retry_after == 120
    assert clock.slept == 0


@pytest.mark.parametrize(("now", "warned"), [
    (datetime(2024, 6, 2, 12, 0, tzinfo=UTC), True),  # 36 h after the month ended
    (datetime(2024, 6, 3, 0, 0, 1, tzinfo=UTC), False),  # just over 48 h after
])
def test_request_warns_when_the_month_may_still_be_settling_by_the_adapters_clock(
    now: datetime, warned: bool, caplog: pytest.LogCaptureFixture
) -> None:
    # Given the adapter's clock shortly after (or more than 48 h after) May 2024 ended
    caplog.set_level(logging.WARNING, logger="report-exporter")
    sim = KoreSimulator()
    adapter, export = sim_adapter(sim, VirtualClock(now))
    # When RequestReport runs
    adapter.request(plan_for(export, PERIOD, now=now))
    # Then the operator is warned only while KORE may still be processing the month's usage
    assert any("may still be settling" in message for message in caplog.messages) is warned
