"""Telnyx adapter against recorded bodies and the Telnyx simulator, through httpx.MockTransport (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.http_client import build_client
from report_exporter.adapters.in_place import PAGES
from report_exporter.clock import VirtualClock
from report_exporter.errors import (
    InvalidExportError,
    SecretError,
    VendorAuthError,
    VendorContractError,
    VendorRequestError,
    VendorThrottledError,
)
from report_exporter.models.exports import TelnyxExport, Window
from report_exporter.models.payloads import JobStatus
from report_exporter.vendors.telnyx.adapter import PAGE_SIZE, TelnyxAdapter
from report_exporter.vendors.telnyx.simulator import TelnyxSimulator
from tests.fakes import MemorySink, SleepLog, plan_for

EXPORT = TelnyxExport(
    name="telnyx-messaging", secret_name="s/telnyx", product="messaging",
    dimensions=("product_name", "country_iso", "direction", "currency"), metrics=("cost", "parts", "count"),
)
KEY = "KEY0123456789ABCDEF_secret"
FIXTURES = Path(__file__).parents[2] / "fixtures" / "vendors" / "telnyx"
RUN_FILE = "telnyx-messaging-2026-10-usage.jsonl"
NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)




@pytest.fixture
def clock() -> SleepLog:
    return SleepLog(NOW)


def adapter(transport: httpx.BaseTransport, export: TelnyxExport = EXPORT, key: str = KEY,
            clock: VirtualClock | None = None) -> TelnyxAdapter:
    return TelnyxAdapter(export, build_client("https://api.telnyx.test/v2", transport=transport),
                         {"api_key": SecretStr(key)}, clock or VirtualClock(NOW))


def sim_adapter(sim: TelnyxSimulator, export: TelnyxExport = EXPORT,
                clock: VirtualClock | None = None) -> TelnyxAdapter:
    return adapter(sim.transport(), export, sim.api_key, clock)


def recorded() -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """The three recorded pages, served byte for byte (pretty-printed, as a server may) by page[number]."""
    seen: list[httpx.Request] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = (FIXTURES / f"usage_page{request.url.params['page[number]']}.json").read_bytes()
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    return httpx.MockTransport(vendor), seen


def lines(sink: MemorySink, name: str = RUN_FILE) -> list[dict[str, Any]]:
    return [json.loads(line) for line in sink.files[name].splitlines()]


def test_telnyx_request_is_ready_at_once_without_calling_the_vendor() -> None:
    # Given a synchronous vendor
    sim = TelnyxSimulator()
    # When RequestReport asks for the run's report
    result = sim_adapter(sim).request(plan_for(EXPORT))
    # Then the run goes straight to DownloadReport and nothing was sent
    assert (result.status, result.report_id) == (JobStatus.READY, None)
    assert sim.seen == []


def test_telnyx_download_reads_three_pages_without_losing_or_duplicating_rows() -> None:
    # Given a report of 5 rows over 3 pages (page 2 spells its meta numbers as strings)
    transport, seen = recorded()
    sink = MemorySink()
    # When downloaded
    adapter(transport).download(plan_for(EXPORT), None, sink)
    # Then pages 1, 2, 3 were asked for once each and every row arrived once, in a single raw object
    assert [r.url.params["page[number]"] for r in seen] == ["1", "2", "3"]
    (raw,) = sink.objects
    assert (raw.dataset, raw.content_type, raw.records) == ("telnyx_usage", "application/x-ndjson", 5)
    rows = [row for line in lines(sink) for row in line["response"]["data"]]
    assert [(r["country_iso"], r["product_name"]) for r in rows] == [
        ("LC", "long_code"), ("MP", "long_code"), ("US", "toll_free"), ("US", "short_code"), ("NL", "long_code"),
    ]


def test_telnyx_download_pages_a_large_report_from_the_simulator() -> None:
    # Given more rows than two pages of the maximum page size hold
    sim = TelnyxSimulator(rows=2 * PAGE_SIZE + 7)
    sink = MemorySink()
    # When downloaded
    sim_adapter(sim).download(plan_for(EXPORT), None, sink)
    # Then three pages of page[size]=5000 were read and each generated row appears exactly once
    assert [c.query["page[size]"] for c in sim.seen] == [[str(PAGE_SIZE)]] * 3
    got = [row["product_name"] for line in lines(sink) for row in line["response"]["data"]]
    assert len(got) == len(set(got)) == sim.rows
    assert sink.objects[0].records == sim.rows


def test_telnyx_download_sends_the_documented_query_for_the_utc_month() -> None:
    # Given a Berlin export with a filter and managed accounts
    export = EXPORT.model_copy(update={
        "timezone": "Europe/Berlin", "filters": {"currency": "USD"}, "managed_accounts": True,
    })
    captured: list[httpx.Request] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200, json={"meta": {"total_pages": 1, "page_number": 1}, "data": []})

    # When May 2026 is downloaded
    adapter(httpx.MockTransport(vendor), export).download(plan_for(export, "2026-05"), None, MemorySink())
    # Then the Berlin month went out in UTC, end exclusive, with Telnyx's parameter spelling and a Bearer key
    (request,) = captured
    assert request.url.path == "/v2/usage_reports"
    assert dict(request.url.params) == {
        "product": "messaging",
        "dimensions": "product_name,country_iso,direction,currency",
        "metrics": "cost,parts,count",
        "start_date": "2026-04-30T22:00:00Z",
        "end_date": "2026-05-31T22:00:00Z",
        "format": "json",
        "page[number]": "1",
        "page[size]": "5000",
        "managed_accounts": "true",
        "filter[currency]": "USD",
    }
    assert request.headers["Authorization"] == f"Bearer {KEY}"


def test_telnyx_download_splits_a_month_that_a_dst_change_makes_longer_than_31_days() -> None:
    # Given a Berlin export for October (31 days plus the hour clocks go back)
    export = EXPORT.model_copy(update={"timezone": "Europe/Berlin"})
    sim = TelnyxSimulator(rows=3)
    sink = MemorySink()
    # When downloaded (the simulator refuses any range over 31 days)
    sim_adapter(sim, export).download(plan_for(export, "2026-10"), None, sink)
    # Then two consecutive ranges cover the month exactly, and their rows are all kept
    ranges = [(c.query["start_date"][0], c.query["end_date"][0]) for c in sim.seen]
    assert ranges == [
        ("2026-09-30T22:00:00Z", "2026-10-31T22:00:00Z"),
        ("2026-10-31T22:00:00Z", "2026-10-31T23:00:00Z"),
    ]
    assert sink.objects[0].records == 6


def test_telnyx_download_keeps_each_page_body_verbatim_with_what_it_answers(
    load_fixture: Callable[[str], Any],
) -> None:
    # Given the recorded pages, pretty-printed over several lines
    transport, _ = recorded()
    sink = MemorySink()
    # When downloaded
    adapter(transport).download(plan_for(EXPORT), None, sink)
    # Then each page is one line wrapping the body (numbers as Telnyx wrote them) with the request it answers
    first, second, _ = lines(sink)
    assert first["response"] == load_fixture("telnyx/usage_page1.json")
    assert b'"cost": 0.000800' in sink.files[RUN_FILE]
    assert second["request"] == {
        "product": "messaging", "dimensions": list(EXPORT.dimensions), "metrics": list(EXPORT.metrics),
        "managed_accounts": False, "start_date": "2026-10-01T00:00:00Z", "end_date": "2026-11-01T00:00:00Z",
        "page": 2,
    }


@pytest.mark.parametrize("header", ["Retry-After", "x-ratelimit-reset"])
def test_telnyx_download_waits_as_asked_when_throttled_between_pages(header: str, clock: SleepLog) -> None:
    # Given the vendor throttles page 2 once, asking for 7 s
    sim = TelnyxSimulator(rows=PAGE_SIZE + 1, throttle_page=2, retry_after=7, retry_header=header)
    sink = MemorySink()
    # When downloaded
    sim_adapter(sim, clock=clock).download(plan_for(EXPORT), None, sink)
    # Then the adapter slept 7 s on its clock, asked for page 2 again and lost nothing
    assert clock.sleeps == [7.0]
    assert clock.now() == NOW + timedelta(seconds=7)
    assert [c.query["page[number]"][0] for c in sim.seen] == ["1", "2", "2"]
    assert sink.objects[0].records == PAGE_SIZE + 1


def test_telnyx_download_leaves_long_throttling_waits_to_step_functions(clock: SleepLog) -> None:
    # Given the vendor asks for a wait longer than a Lambda should idle
    sim = TelnyxSimulator(rows=PAGE_SIZE + 1, throttle_page=2, retry_after=int(PAGES.max_wait) + 240)
    sink = MemorySink()
    # When downloaded
    with pytest.raises(VendorThrottledError) as caught:
        sim_adapter(sim, clock=clock).download(plan_for(EXPORT), None, sink)
    # Then it raised the retryable error with the hint, slept nothing and kept no partial raw object
    assert caught.value.retry_after == PAGES.max_wait + 240
    assert clock.sleeps == []
    assert sink.objects == []


def test_telnyx_download_gives_up_after_repeated_throttling(clock: SleepLog) -> None:
    # Given a vendor that throttles every call without a hint
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, json={"errors": [{"code": "10011", "title": "Too many requests"}]})

    # When downloaded / Then it backs off 1, 2, 4, 8 s and then hands over to Step Functions
    with pytest.raises(VendorThrottledError, match="10011"):
        adapter(httpx.MockTransport(vendor), clock=clock).download(plan_for(EXPORT), None, MemorySink())
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]


def test_telnyx_wrong_key_is_an_auth_error_naming_no_secret(load_fixture: Callable[[str], Any]) -> None:
    # Given the vendor refuses the key
    sim = TelnyxSimulator()
    # When downloaded with another key
    with pytest.raises(VendorAuthError) as caught:
        adapter(sim.transport(), key="KEY-wrong-value").download(plan_for(EXPORT), None, MemorySink())
    # Then the message names the status and Telnyx's code, not the key or the URL
    message = str(caught.value)
    assert "401" in message and "10009" in message
    assert "KEY-wrong-value" not in message and "telnyx.test" not in message


def test_telnyx_invalid_metric_is_a_request_error_with_the_vendors_detail(
    load_fixture: Callable[[str], Any],
) -> None:
    # Given the vendor refuses a metric name
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json=load_fixture("telnyx/error_400_metrics.json"))

    # When downloaded / Then the operator sees Telnyx's code and the metrics it offers
    with pytest.raises(VendorRequestError, match=r"10003.*Metrics invalid values"):
        adapter(httpx.MockTransport(vendor)).download(plan_for(EXPORT), None, MemorySink())


def test_telnyx_refuses_a_window_over_31_days_before_any_request() -> None:
    # Given a hand-made 40-day window (a schedule never builds one)
    sim = TelnyxSimulator()
    plan = plan_for(EXPORT).model_copy(update={"window": Window(
        period="2026-10", start=datetime(2026, 9, 22, tzinfo=UTC), end=datetime(2026, 11, 1, tzinfo=UTC),
    )})
    # When PlanRun checks it, and even if the adapter were handed it
    with pytest.raises(InvalidExportError, match="at most 31 days"):
        EXPORT.check_window(plan.window, now=plan.started_at)
    with pytest.raises(InvalidExportError, match="telnyx-messaging"):
        sim_adapter(sim).download(plan, None, MemorySink())
    # Then no request reached the vendor
    assert sim.seen == []


def test_telnyx_page_number_that_does_not_follow_is_a_contract_error() -> None:
    # Given a vendor that ignores page[number] and serves page 1 again
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"meta": {"total_pages": 2, "page_number": 1}, "data": [{"product": "x"}]})

    # When downloaded / Then reading on is refused rather than duplicating rows
    with pytest.raises(VendorContractError, match="asked for page 2, got page 1"):
        adapter(httpx.MockTransport(vendor)).download(plan_for(EXPORT), None, MemorySink())


def test_telnyx_row_count_other_than_total_results_is_a_contract_error() -> None:
    # Given a vendor whose pages hold fewer rows than it announced
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"meta": {"total_pages": 1, "total_results": 3}, "data": [{"product": "x"}]})

    # When downloaded / Then the loss is reported instead of published
    with pytest.raises(VendorContractError, match=r"held 1 rows but meta\.total_results is 3"):
        adapter(httpx.MockTransport(vendor)).download(plan_for(EXPORT), None, MemorySink())


def test_telnyx_empty_report_still_writes_its_raw_page() -> None:
    # Given a month without usage
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"meta": {"total_pages": 0, "total_results": 0}, "data": []})

    sink = MemorySink()
    # When downloaded
    adapter(httpx.MockTransport(vendor)).download(plan_for(EXPORT), None, sink)
    # Then one raw object with zero records exists (WriteParquet publishes an empty partition)
    assert [o.records for o in sink.objects] == [0]


def test_telnyx_poll_is_a_contract_error_for_a_synchronous_vendor() -> None:
    with pytest.raises(VendorContractError, match="synchronous"):
        adapter(httpx.MockTransport(lambda r: httpx.Response(500))).poll(plan_for(EXPORT), "x")


def test_telnyx_missing_api_key_is_a_secret_error() -> None:
    with pytest.raises(SecretError, match="api_key"):
        TelnyxAdapter(EXPORT, build_client("https://api.telnyx.test/v2"), {"token": SecretStr("x")}, VirtualClock(NOW))
