"""KORE adapter, page by page: what KORE receives, which page an error names, resumed attempts, the logs.

Complements test_kore.py: the query in UTC on any machine, the Accept header, page numbers in errors,
token answers without ``expires_in`` or ``access_token``, a next attempt after a change of query or after
every page was kept, raw lines that survive CRLF bodies, and the log lines operators read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.auth import clear_token_cache
from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from report_exporter.errors import ExporterError, VendorContractError, VendorThrottledError
from report_exporter.models.exports import KoreExport
from report_exporter.vendors.kore.adapter import KoreAdapter
from report_exporter.vendors.kore.simulator import KoreSimulator
from tests.fakes import MemorySink, plan_for

BASE = "https://programmable-wireless.api.korewireless.com"
PERIOD = "2024-05"
NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
CREDS = {"client_id": SecretStr("client-abc"), "client_secret": SecretStr("s3cr3t-value")}
TOKEN = {"access_token": "tok-1", "expires_in": 3600, "token_type": "Bearer"}


@pytest.fixture(autouse=True)
def fresh_tokens() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


def export_for(base_url: str = BASE, **fields: Any) -> KoreExport:
    return KoreExport(name="kore-main", secret_name="kore/main", base_url=base_url, **fields)


def on_mock(vendor: Any, clock: VirtualClock | None = None) -> tuple[KoreAdapter, KoreExport]:
    export = export_for()
    client = build_client(BASE, transport=httpx.MockTransport(vendor))
    return KoreAdapter(export, client, CREDS, clock or VirtualClock(NOW)), export


def on_sim(sim: KoreSimulator, now: datetime = NOW, **fields: Any) -> tuple[KoreAdapter, KoreExport]:
    sim.clock = VirtualClock(now)
    export = export_for(sim.base_url, token_url=sim.token_url, **fields)
    creds = {k: SecretStr(v) for k, v in sim.credentials().items()}
    return KoreAdapter(export, build_client(sim.base_url, transport=sim.transport()), creds, sim.clock), export


def usage_page(n_records: int, next_url: Any) -> dict[str, Any]:
    records = [{"account_sid": "AC1", "period": {"start": f"2024-05-{d:02}T00:00:00Z", "end": "2024-05-31T00:00:00Z"}}
               for d in range(1, n_records + 1)]
    return {"usage_records": records, "meta": {"next_page_url": next_url}}


def paged(*pages: dict[str, Any], seen: list[httpx.Request] | None = None) -> Any:
    """A KORE that issues a token, then answers page n (Page=n-1 in the link) with ``pages[n-1]``."""

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, json=TOKEN)
        if seen is not None:
            seen.append(request)
        return httpx.Response(200, json=pages[int(request.url.params.get("Page", "0"))])

    return vendor


def link(page: int) -> str:
    return f"{BASE}/v1/UsageRecords?PageToken=PT{page}&Page={page}"


def rows_of(raw: bytes) -> list[dict[str, Any]]:
    return [r for line in raw.splitlines() for r in json.loads(line)["usage_records"]]


# What KORE receives.

def test_the_query_is_sent_in_utc_whatever_the_machines_time_zone(new_york_machine: None) -> None:
    # Given a machine in New York and KORE's answer of one page
    seen: list[httpx.Request] = []
    adapter, export = on_mock(paged(usage_page(1, None), seen=seen))
    # When May 2024 (a UTC export) is downloaded
    adapter.download(plan_for(export, PERIOD), None, MemorySink())
    # Then Start and End are the month's UTC bounds, not New York's wall clock
    (request,) = seen
    assert request.url.params["Start"] == "2024-05-01T00:00:00Z"
    assert request.url.params["End"] == "2024-05-31T23:59:59Z"


def test_every_page_request_asks_for_json() -> None:
    # Given KORE with two pages
    seen: list[httpx.Request] = []
    adapter, export = on_mock(paged(usage_page(2, link(1)), usage_page(1, None), seen=seen))
    # When downloaded / Then both page requests carried Accept: application/json
    adapter.download(plan_for(export, PERIOD), None, MemorySink())
    assert [r.headers.get("Accept") for r in seen] == ["application/json", "application/json"]


@pytest.mark.parametrize("last", [None, ""])
def test_a_page_without_a_next_page_url_is_the_last_one_fetched(last: str | None) -> None:
    # Given a second page whose next_page_url is null or empty (KORE's general guidelines send either)
    seen: list[httpx.Request] = []
    adapter, export = on_mock(paged(usage_page(2, link(1)), usage_page(1, last), seen=seen))
    sink = MemorySink()
    # When downloaded
    adapter.download(plan_for(export, PERIOD), None, sink)
    # Then exactly the two pages were fetched and the three records kept
    assert len(seen) == 2
    (raw,) = sink.files.values()
    assert len(rows_of(raw)) == 3 and sink.objects[0].records == 3


# Errors name the page.

def test_a_page_without_usage_records_is_named_by_its_number() -> None:
    # Given KORE whose third page is not a usage list
    adapter, export = on_mock(paged(usage_page(1, link(1)), usage_page(1, link(2)), {"message": "maintenance"}))
    # When downloaded / Then the error names KORE, the request and page 3
    with pytest.raises(VendorContractError) as caught:
        adapter.download(plan_for(export, PERIOD), None, MemorySink())
    assert str(caught.value) == "kore list usage records page 3: no 'usage_records' list in the answer"


def test_a_refused_page_request_names_kore_and_the_page() -> None:
    # Given KORE answering the second page 404
    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, json=TOKEN)
        if request.url.params.get("Page") == "1":
            return httpx.Response(404, json={"code": 20404, "status": 404, "message": "not found"})
        return httpx.Response(200, json=usage_page(1, link(1)))

    adapter, export = on_mock(vendor)
    # When downloaded / Then the error says which vendor and which page
    with pytest.raises(ExporterError, match=r"^kore list usage records page 2: "):
        adapter.download(plan_for(export, PERIOD), None, MemorySink())


def test_a_next_page_url_that_is_not_text_is_named_with_its_page() -> None:
    # Given a first page whose next_page_url is a number
    adapter, export = on_mock(paged(usage_page(1, 2)))
    # When downloaded / Then the contract error names the page and the field
    with pytest.raises(VendorContractError) as caught:
        adapter.download(plan_for(export, PERIOD), None, MemorySink())
    assert str(caught.value) == "kore list usage records page 1: meta.next_page_url is not a string"


def test_a_foreign_next_page_url_on_page_2_names_page_2() -> None:
    # Given a second page linking to another host
    adapter, export = on_mock(paged(usage_page(1, link(1)), usage_page(1, "https://evil.example.com/v1/x")))
    # When downloaded / Then the refusal names page 2
    with pytest.raises(VendorContractError, match=r"^kore list usage records page 2: next_page_url points to"):
        adapter.download(plan_for(export, PERIOD), None, MemorySink())


# The token.

def test_a_token_answer_without_expires_in_is_used_for_five_minutes_less_the_margin() -> None:
    # Given a token endpoint that leaves out expires_in (RFC 6749 makes it only RECOMMENDED)
    tokens: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            tokens.append(f"tok-{len(tokens) + 1}")
            return httpx.Response(200, json={"access_token": tokens[-1], "token_type": "Bearer"})
        return httpx.Response(200, json=usage_page(1, None))

    clock = VirtualClock(NOW)
    adapter, export = on_mock(vendor, clock)
    plan = plan_for(export, PERIOD)
    # When downloads run now and 3 minutes later / Then one token served both
    adapter.download(plan, None, MemorySink())
    clock.advance(180)
    adapter.download(plan, None, MemorySink())
    assert tokens == ["tok-1"]
    # When 4.5 minutes have passed (inside the last 30 s of the assumed 5 minutes) / Then a new one is fetched
    clock.advance(90)
    adapter.download(plan, None, MemorySink())
    assert tokens == ["tok-1", "tok-2"]


def test_a_token_answer_without_an_access_token_names_kores_token_request() -> None:
    # Given a token endpoint answering 200 without a token
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"token_type": "Bearer", "expires_in": 3600})

    adapter, export = on_mock(vendor)
    # When the run asks for its report / Then the error says it was KORE's token request
    with pytest.raises(VendorContractError) as caught:
        adapter.request(plan_for(export, PERIOD))
    assert str(caught.value) == "kore get access token: no access_token in the answer"


# The raw file.

def test_a_crlf_pretty_printed_page_is_stored_as_one_json_line() -> None:
    # Given KORE answering pretty-printed JSON with CRLF line ends (and a CR inside the layout)
    first = json.dumps(usage_page(2, link(1)), indent=2).replace("\n", "\r\n").encode()
    second = json.dumps(usage_page(1, None), indent=2).replace("\n", "\r\n").replace("{", "{\r").encode()

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/auth/token"):
            return httpx.Response(200, json=TOKEN)
        return httpx.Response(200, content=second if request.url.params.get("Page") == "1" else first)

    adapter, export = on_mock(vendor)
    sink = MemorySink()
    # When downloaded
    adapter.download(plan_for(export, PERIOD), None, sink)
    # Then the raw file has one line per page for any JSON-lines reader (no CR or LF inside a line)
    (raw,) = sink.files.values()
    assert raw.endswith(b"\n") and b"\r" not in raw
    assert [json.loads(line) for line in raw.splitlines()] == [usage_page(2, link(1)), usage_page(1, None)]


# A next attempt.

def failed_attempt(sim: KoreSimulator, **fields: Any) -> MemorySink:
    """An attempt that kept pages 1 and 2 of 4, then gave up on a long throttle of page 3."""
    adapter, export = on_sim(sim, **fields)
    sink = MemorySink(part_size=1)
    with pytest.raises(VendorThrottledError):
        adapter.download(plan_for(export, PERIOD), None, sink)
    assert sink.last is not None and sink.last.cursor is not None
    return MemorySink(resume=(sink.last.kept, sink.last.cursor))


def test_a_next_attempt_for_another_query_starts_over() -> None:
    # Given daily pages kept by an attempt of the export before it was changed to hourly
    sim = KoreSimulator(page_size=10, throttle_pages=frozenset({3}), retry_after=120)
    resumed = failed_attempt(sim, granularity="daily")
    sim.served.clear()
    sim.page_size = 1000
    # When the next attempt runs with the hourly export
    adapter, export = on_sim(sim, granularity="hourly")
    adapter.download(plan_for(export, PERIOD), None, resumed)
    # Then it asked again from the first page, and the raw file holds only the hourly records
    assert sim.served[0] == 0
    (raw,) = resumed.files.values()
    starts = [r["period"]["start"] for r in rows_of(raw)]
    assert len(starts) == 31 * 24 == len(set(starts)) == resumed.objects[0].records


def test_a_next_attempt_after_every_page_was_kept_fetches_nothing_again() -> None:
    # Given an attempt that kept all four pages and the cursor after the last (then the Lambda died)
    sim = KoreSimulator(page_size=10)
    adapter, export = on_sim(sim)
    first = MemorySink(part_size=1)
    adapter.download(plan_for(export, PERIOD), None, first)
    assert first.last is not None and first.last.cursor is not None and first.last.cursor["next"] is None
    served = sim.pages_served
    resumed = MemorySink(resume=(first.last.kept, first.last.cursor))
    # When the next attempt runs
    adapter.download(plan_for(export, PERIOD), None, resumed)
    # Then KORE is not asked for any page, and the raw file is the one the first attempt wrote
    assert sim.pages_served == served == 4
    assert resumed.files == first.files


# Logs.

def test_the_download_logs_its_pages_and_records(caplog: pytest.LogCaptureFixture) -> None:
    # Given a simulator month of 31 daily records, 10 a page
    caplog.set_level(logging.INFO, logger="report-exporter")
    adapter, export = on_sim(KoreSimulator(page_size=10))
    # When downloaded
    adapter.download(plan_for(export, PERIOD), None, MemorySink())
    # Then one log line tells the operator how many pages and records came
    (done,) = [r for r in caplog.records if r.getMessage() == "kore usage records downloaded"]
    assert (done.pages, done.records) == (4, 31)  # type: ignore[attr-defined]


def test_the_settling_warning_names_the_export_and_period(caplog: pytest.LogCaptureFixture) -> None:
    # Given a run the day after May 2024 ended
    caplog.set_level(logging.WARNING, logger="report-exporter")
    now = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    adapter, export = on_sim(KoreSimulator(), now)
    # When RequestReport runs / Then the warning says which export and month may be incomplete
    adapter.request(plan_for(export, PERIOD, now=now))
    (warning,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert warning.getMessage() == "KORE usage may still be settling: it is processed within 48 h of when it occurred"
    assert (warning.export, warning.period) == ("kore-main", PERIOD)  # type: ignore[attr-defined]


def test_no_settling_warning_once_48_hours_have_passed_exactly(caplog: pytest.LogCaptureFixture) -> None:
    # Given a run exactly 48 h after May 2024 ended
    caplog.set_level(logging.WARNING, logger="report-exporter")
    now = datetime(2024, 6, 1, tzinfo=UTC) + timedelta(hours=48)
    adapter, export = on_sim(KoreSimulator(), now)
    # When RequestReport runs / Then KORE's usage is taken as settled: no warning
    adapter.request(plan_for(export, PERIOD, now=now))
    assert [r for r in caplog.records if r.levelno == logging.WARNING] == []

