"""Telnyx adapter: the attempt after a failed one resumes after the pages kept, across the two date ranges
of a month made longer than 31 days by a DST change, and only when it asks the same question
(httpx.MockTransport, no sockets)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from report_exporter.errors import VendorContractError, VendorUnavailableError
from report_exporter.models.exports import TelnyxExport
from report_exporter.vendors.telnyx.adapter import TelnyxAdapter
from tests.fakes import MemorySink, plan_for

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
# October in Berlin is 31 days and one hour long in UTC: two date ranges.
BERLIN = TelnyxExport(name="telnyx-messaging", secret_name="s/telnyx", product="messaging",
                      dimensions=("direction",), metrics=("cost",), timezone="Europe/Berlin")
FIRST, SECOND = "2026-09-30T22:00:00Z", "2026-10-31T22:00:00Z"


@dataclass
class Vendor:
    """Two pages of one row per date range; the row names its range, page and the dimensions asked for."""

    failing: set[tuple[str, int]] = field(default_factory=set)
    """(start_date, page) answered 503 every time."""
    served: list[tuple[str, int]] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        start, page = request.url.params["start_date"], int(request.url.params["page[number]"])
        if (start, page) in self.failing:
            return httpx.Response(503, json={"errors": [{"code": "10007", "title": "Unavailable"}]})
        self.served.append((start, page))
        row = {"direction": f"{start}/{page}/{request.url.params['dimensions']}", "cost": "0.5"}
        return httpx.Response(200, json={"meta": {"total_pages": 2, "total_results": 2, "page_number": page},
                                         "data": [row]})


def adapter(vendor: Callable[[httpx.Request], httpx.Response], export: TelnyxExport) -> TelnyxAdapter:
    client = build_client("https://api.telnyx.test/v2", transport=httpx.MockTransport(vendor))
    return TelnyxAdapter(export, client, {"api_key": SecretStr("KEY-test")}, VirtualClock(NOW))


def failed_attempt(vendor: Callable[[httpx.Request], httpx.Response], export: TelnyxExport,
                   error: type[Exception] = VendorUnavailableError) -> MemorySink:
    """An attempt that fails for good, keeping a part per page; returns the next attempt's sink."""
    first = MemorySink(part_size=1)
    with pytest.raises(error):
        adapter(vendor, export).download(plan_for(export), None, first)
    assert first.objects == [] and first.last is not None and first.last.cursor is not None
    return MemorySink(resume=(first.last.kept, first.last.cursor))


def fault_free(export: TelnyxExport) -> bytes:
    sink = MemorySink()
    adapter(Vendor(), export).download(plan_for(export), None, sink)
    return sink.files[sink.objects[0].key]


def rows(data: bytes) -> list[str]:
    return [row["direction"] for line in data.splitlines() for row in json.loads(line)["response"]["data"]]


def test_telnyx_a_month_of_two_ranges_is_read_range_by_range_into_one_object() -> None:
    vendor = Vendor()
    sink = MemorySink()
    adapter(vendor, BERLIN).download(plan_for(BERLIN), None, sink)
    assert vendor.served == [(FIRST, 1), (FIRST, 2), (SECOND, 1), (SECOND, 2)]
    assert sink.objects[0].records == 4


def test_telnyx_resumes_in_the_second_date_range_after_the_pages_kept() -> None:
    # Given an attempt that gave up on page 2 of the month's second range, after keeping three pages
    vendor = Vendor(failing={(SECOND, 2)})
    resumed = failed_attempt(vendor, BERLIN)
    assert vendor.served == [(FIRST, 1), (FIRST, 2), (SECOND, 1)]
    # When the next attempt runs against a recovered vendor
    vendor.failing.clear()
    adapter(vendor, BERLIN).download(plan_for(BERLIN), None, resumed)
    # Then it asked only for the missing page, and the raw object is the one a fault-free run writes
    assert vendor.served[3:] == [(SECOND, 2)]
    (raw,) = resumed.objects
    assert raw.records == 4
    assert resumed.files[raw.key] == fault_free(BERLIN)


def test_telnyx_resumes_at_the_second_range_when_the_first_was_kept_whole() -> None:
    # Given an attempt that gave up on the first page of the second range
    vendor = Vendor(failing={(SECOND, 1)})
    resumed = failed_attempt(vendor, BERLIN)
    vendor.failing.clear()
    # When the next attempt runs
    adapter(vendor, BERLIN).download(plan_for(BERLIN), None, resumed)
    # Then the first range was not asked for again
    assert vendor.served[2:] == [(SECOND, 1), (SECOND, 2)]
    assert resumed.files[resumed.objects[0].key] == fault_free(BERLIN)


def test_telnyx_a_cursor_kept_before_the_dimensions_changed_is_not_resumed() -> None:
    # Given an attempt for dimension "direction" that kept page 1 of two (a one-range UTC month)
    export = BERLIN.model_copy(update={"timezone": "UTC"})
    start = "2026-10-01T00:00:00Z"
    vendor = Vendor(failing={(start, 2)})
    resumed = failed_attempt(vendor, export)
    # When the export now asks for another dimension and the next attempt runs
    changed = export.model_copy(update={"dimensions": ("country_iso",)})
    vendor.failing.clear()
    adapter(vendor, changed).download(plan_for(changed), None, resumed)
    # Then it starts over: no row of the old question is mixed into the new object
    assert vendor.served[1:] == [(start, 1), (start, 2)]
    assert rows(resumed.files[resumed.objects[0].key]) == [f"{start}/1/country_iso", f"{start}/2/country_iso"]
    assert resumed.last is not None and resumed.last.restarts == 1


def test_telnyx_a_cursor_kept_before_the_time_zone_changed_is_not_resumed() -> None:
    # Given a UTC export's attempt that kept page 1 of October's single range
    utc = BERLIN.model_copy(update={"timezone": "UTC"})
    start = "2026-10-01T00:00:00Z"
    vendor = Vendor(failing={(start, 2)})
    resumed = failed_attempt(vendor, utc)
    # When the export moves to Berlin (other date ranges) and the next attempt runs
    vendor.failing.clear()
    adapter(vendor, BERLIN).download(plan_for(BERLIN), None, resumed)
    # Then it reads Berlin's ranges from their first page, and keeps nothing of the UTC month
    assert vendor.served[1:] == [(FIRST, 1), (FIRST, 2), (SECOND, 1), (SECOND, 2)]
    assert resumed.files[resumed.objects[0].key] == fault_free(BERLIN)


def test_telnyx_rows_lost_between_pages_are_refused_again_by_the_next_attempt() -> None:
    # Given a vendor whose only page holds 1 row but announces 3, so the attempt fails after keeping it
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"meta": {"total_pages": 1, "total_results": 3, "page_number": 1},
                                         "data": [{"direction": "outbound"}]})

    export = BERLIN.model_copy(update={"timezone": "UTC"})
    resumed = failed_attempt(vendor, export, VendorContractError)
    # When the next attempt resumes after that page / Then it still refuses to publish the short report
    with pytest.raises(VendorContractError, match=r"held 1 rows but meta\.total_results is 3"):
        adapter(vendor, export).download(plan_for(export), None, resumed)
    assert resumed.objects == []
