"""Senet adapter: what the vendor receives (methods, Accept), how its failures read, and how they are waited out.

Complements test_senet.py: the vendor is a MockTransport scripted per test (no sockets), time is a virtual clock.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from report_exporter import limits
from report_exporter.adapters.http_client import build_client
from report_exporter.errors import (
    ReportNotAvailableYetError,
    VendorRequestError,
    VendorThrottledError,
    VendorUnavailableError,
)
from report_exporter.models.exports import HereExport
from report_exporter.vendors.senet.adapter import SenetAdapter
from tests.fakes import MemorySink, SleepLog, plan_for
from tests.unit.adapters.test_senet import EUIS, EXPORT, KEY, NOW

CSV = b"DevEUI,Device Name,Contract ID,Uplinks,Downlinks,Security Sessions,Last Seen\n00250C0100000001,M,C-1,1,1,1,x\n"
SUMMARY = {"numberOfDevices": 1}

Handler = Callable[[httpx.Request], httpx.Response]


def healthy(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/details"):
        return httpx.Response(200, content=CSV, headers={"Content-Type": "text/csv"})
    return httpx.Response(200, json=SUMMARY)


class Vendor:
    """A scripted Senet: ``script`` answers first (None: the healthy answer); every request is kept."""

    def __init__(self, script: Callable[[httpx.Request, int], httpx.Response | None] | None = None) -> None:
        self.script = script
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        seen = sum(1 for r in self.requests if r.url == request.url)
        answer = self.script(request, seen) if self.script else None
        return answer if answer is not None else healthy(request)

    def paths(self) -> list[str]:
        return [r.url.path.rsplit("/", 1)[-1] for r in self.requests]


def senet(vendor: Handler, clock: SleepLog | None = None, remaining: Callable[[], float] | None = None) -> SenetAdapter:
    client = build_client("https://api.senet.test", transport=httpx.MockTransport(vendor), remaining=remaining)
    return SenetAdapter(EXPORT, client, {"api_key": SecretStr(KEY)}, clock or SleepLog(NOW))


def http_date(when: datetime) -> str:
    return email.utils.format_datetime(when, usegmt=True)


def test_senet_asks_for_json_summaries_and_csv_details_with_get() -> None:
    # Given a vendor that keeps every request
    vendor = Vendor()
    adapter = senet(vendor)
    # When a whole run talks to it
    adapter.request(plan_for(EXPORT))
    adapter.download(plan_for(EXPORT), None, MemorySink())
    # Then summaries ask for JSON, details for CSV, all with GET
    assert [(r.method, r.url.path.rsplit("/", 1)[-1], r.headers["Accept"]) for r in vendor.requests] == [
        ("GET", "summary", "application/json"),
        ("GET", "summary", "application/json"),
        ("GET", "summary", "application/json"),
        ("GET", "details", "text/csv"),
        ("GET", "details", "text/csv"),
    ]


def test_senet_probe_failure_names_the_vendor_and_the_application() -> None:
    # Given Senet failing with 500
    adapter = senet(lambda request: httpx.Response(500, json={"status": 500, "message": "Internal error"}))
    # When RequestReport probes / Then the error says which vendor call failed, and how
    with pytest.raises(VendorUnavailableError) as caught:
        adapter.request(plan_for(EXPORT))
    assert str(caught.value) == f"senet usage summary {EUIS[0]}: vendor error (HTTP 500): Internal error"


def test_senet_probe_throttled_hands_on_the_retry_after_date_counted_on_the_runs_clock() -> None:
    # Given Senet throttling the probe until two minutes after the run's (virtual) now
    adapter = senet(lambda request: httpx.Response(429, headers={"Retry-After": http_date(NOW + timedelta(minutes=2))}))
    # When RequestReport probes
    with pytest.raises(VendorThrottledError) as caught:
        adapter.request(plan_for(EXPORT))
    # Then the wait handed to the state machine is those two minutes, and the error names the call
    assert caught.value.retry_after == 120
    assert str(caught.value).startswith(f"senet usage summary {EUIS[0]}: throttled (HTTP 429)")


def test_senet_summary_failing_for_good_names_the_vendor_and_the_application() -> None:
    # Given the second Application's summary always failing
    def script(request: httpx.Request, seen: int) -> httpx.Response | None:
        if request.url.path.endswith("/summary") and request.url.params["eui"] == EUIS[1]:
            return httpx.Response(503)
        return None

    # When downloaded / Then, once the tries in place are spent, the error names that call
    with pytest.raises(VendorUnavailableError) as caught:
        senet(Vendor(script)).download(plan_for(EXPORT), None, MemorySink())
    assert str(caught.value) == f"senet usage summary {EUIS[1]}: vendor error (HTTP 503)"


@pytest.mark.parametrize("kind", ["summary", "details"])
def test_senet_throttled_file_is_asked_again_after_the_retry_after_date_on_the_runs_clock(kind: str) -> None:
    # Given the first Application's summary or details throttled once, until 30 s after the run's (virtual) now
    def script(request: httpx.Request, seen: int) -> httpx.Response | None:
        if request.url.path.endswith(kind) and request.url.params["eui"] == EUIS[0] and seen == 1:
            return httpx.Response(429, headers={"Retry-After": http_date(NOW + timedelta(seconds=30))})
        return None

    vendor = Vendor(script)
    clock = SleepLog(NOW)
    sink = MemorySink()
    # When downloaded
    senet(vendor, clock).download(plan_for(EXPORT), None, sink)
    # Then the Lambda waited those 30 s and asked again, and every file is complete
    assert clock.sleeps == [30]
    assert vendor.paths().count(kind) == 3
    assert sink.files[f"senet-fleet-2026-10-details-{EUIS[0]}.csv"] == CSV
    assert len(sink.files["senet-fleet-2026-10-summary.jsonl"].splitlines()) == 2


@pytest.mark.parametrize("kind", ["summary", "details"])
def test_senet_failing_file_goes_to_step_functions_when_the_invocation_has_no_time_to_wait(kind: str) -> None:
    # Given an invocation with room for one more call but not for a 1 s wait before it, and a 503 once
    def script(request: httpx.Request, seen: int) -> httpx.Response | None:
        return httpx.Response(503) if request.url.path.endswith(kind) and seen == 1 else None

    vendor = Vendor(script)
    clock = SleepLog(NOW)
    room = limits.CALL_MARGIN_SECONDS + limits.CONNECT_TIMEOUT_SECONDS + 0.5
    # When downloaded / Then the failure is not waited out in the Lambda, and nothing is kept
    sink = MemorySink()
    with pytest.raises(VendorUnavailableError, match=f"senet usage {kind} {EUIS[0]}"):
        senet(vendor, clock, remaining=lambda: room).download(plan_for(EXPORT), None, sink)
    assert clock.sleeps == []
    assert vendor.paths().count(kind) == 1
    assert not any(kind in o.key for o in sink.objects)


def test_senet_details_failing_for_good_names_the_vendor_and_the_application() -> None:
    # Given the first Application's details always failing
    def script(request: httpx.Request, seen: int) -> httpx.Response | None:
        return httpx.Response(502) if request.url.path.endswith("/details") else None

    # When downloaded / Then the error names the details call
    with pytest.raises(VendorUnavailableError) as caught:
        senet(Vendor(script)).download(plan_for(EXPORT), None, MemorySink())
    assert str(caught.value) == f"senet usage details {EUIS[0]}: vendor error (HTTP 502)"


def test_senet_details_connection_drop_names_the_vendor_and_the_application() -> None:
    # Given a details file whose connection always drops
    def script(request: httpx.Request, seen: int) -> httpx.Response | None:
        if request.url.path.endswith("/details"):
            raise httpx.ReadError("connection reset by peer", request=request)
        return None

    # When downloaded / Then the error names the call (and no URL)
    with pytest.raises(VendorUnavailableError) as caught:
        senet(Vendor(script)).download(plan_for(EXPORT), None, MemorySink())
    assert str(caught.value) == f"senet usage details {EUIS[0]}: connection failed (ReadError)"


@pytest.mark.parametrize(
    ("period", "error", "says"),
    [("2026-10", ReportNotAvailableYetError, "no usage data yet (HTTP 404); Senet generates it on the 1st"),
     ("2026-08", VendorRequestError, "application not found or no usage data for that month (HTTP 404)")],
    ids=["month just ended: not yet", "older month: not found"],
)
def test_senet_details_404_is_explained_for_that_application(period: str, error: type[Exception], says: str) -> None:
    # Given every summary there but the second Application's details answering 404
    def script(request: httpx.Request, seen: int) -> httpx.Response | None:
        if request.url.path.endswith("/details") and request.url.params["eui"] == EUIS[1]:
            return httpx.Response(404, json={"status": 404, "message": "Application or File not found"})
        return None

    sink = MemorySink()
    # When downloaded
    with pytest.raises(error) as caught:
        senet(Vendor(script)).download(plan_for(EXPORT, period), None, sink)
    # Then the error says which Application and month, and whether waiting can help
    assert type(caught.value) is error
    assert str(caught.value) == f"senet application {EUIS[1]} (export 'senet-fleet') {period}: {says}"
    assert f"senet-fleet-{period}-details-{EUIS[1]}.csv" not in sink.files


@pytest.mark.parametrize("status", [201, 202, 204])
def test_senet_details_answer_other_than_200_is_not_kept_as_the_months_file(status: int) -> None:
    # Given a details call answered with another success status (no CSV of the month)
    def script(request: httpx.Request, seen: int) -> httpx.Response | None:
        if request.url.path.endswith("/details"):
            return httpx.Response(status, content=b"generating")
        return None

    sink = MemorySink()
    # When downloaded / Then it is refused and no details file is kept
    with pytest.raises(VendorRequestError, match=f"senet usage details {EUIS[0]}: request refused \\(HTTP {status}\\)"):
        senet(Vendor(script)).download(plan_for(EXPORT), None, sink)
    assert [o.key for o in sink.objects] == ["senet-fleet-2026-10-summary.jsonl"]


def test_senet_404_for_an_older_month_names_the_probed_application() -> None:
    # Given August missing for every Application
    adapter = senet(lambda request: httpx.Response(404, json={"status": 404, "message": "Not found"}))
    # When RequestReport probes / Then the error names the Application it probed (the first)
    with pytest.raises(VendorRequestError) as caught:
        adapter.request(plan_for(EXPORT, "2026-08"))
    assert str(caught.value) == (
        f"senet application {EUIS[0]} (export 'senet-fleet') 2026-08: "
        "application not found or no usage data for that month (HTTP 404)"
    )


def test_senet_adapter_refuses_another_vendors_export() -> None:
    # Given a HERE export handed to the Senet adapter by mistake / Then it says what it needs
    here = HereExport(name="here-main", secret_name="here/main", realm="org123456789")
    with pytest.raises(TypeError, match=r"^SenetAdapter needs a SenetExport$"):
        SenetAdapter(here, build_client("https://api.senet.test"), {"api_key": SecretStr(KEY)}, SleepLog(NOW))
