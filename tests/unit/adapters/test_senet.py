"""Senet adapter against the Senet simulator and recorded bodies, through httpx.MockTransport (no sockets)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.csv_records import CsvRecordCounter
from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from report_exporter.errors import (
    InvalidExportError,
    ReportNotAvailableYetError,
    SecretError,
    VendorAuthError,
    VendorContractError,
    VendorRequestError,
)
from report_exporter.models.exports import SenetExport, Window
from report_exporter.models.payloads import JobStatus
from report_exporter.vendors.senet.adapter import AVAILABILITY, SenetAdapter
from report_exporter.vendors.senet.simulator import SenetSimulator
from tests.fakes import MemorySink, plan_for

EUIS = ("00250C0000010001", "00250C0000010002")
EXPORT = SenetExport(name="senet-fleet", secret_name="s/senet", application_euis=EUIS)
KEY = "senet-raw-key-0123456789"
NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
DETAILS = (Path(__file__).parents[2] / "fixtures" / "vendors" / "senet" / "details.csv").read_bytes()


def adapter(transport: httpx.BaseTransport, key: str = KEY, export: SenetExport = EXPORT) -> SenetAdapter:
    return SenetAdapter(export, build_client("https://api.senet.test", transport=transport),
                        {"api_key": SecretStr(key)}, VirtualClock(NOW))


def sim_adapter(sim: SenetSimulator) -> SenetAdapter:
    return adapter(sim.transport(), sim.api_key)


def test_senet_request_is_ready_when_the_month_is_there() -> None:
    # Given the month's data exists
    sim = SenetSimulator(euis=EUIS)
    # When RequestReport runs
    result = sim_adapter(sim).request(plan_for(EXPORT, "2026-10"))
    # Then the run goes straight to DownloadReport after one probe of the first Application
    assert (result.status, result.report_id) == (JobStatus.READY, None)
    (probe,) = sim.seen
    assert probe.path == "/rest/integration/usage/summary"
    assert probe.query == {"eui": [EUIS[0]], "month": ["10"], "year": ["2026"]}


def test_senet_sends_the_raw_key_without_bearer(load_fixture: Callable[[str], Any]) -> None:
    # Given a vendor that records the Authorization header
    headers: list[str] = []

    def vendor(request: httpx.Request) -> httpx.Response:
        headers.append(request.headers["Authorization"])
        if request.url.path.endswith("/details"):
            return httpx.Response(200, content=DETAILS, headers={"Content-Type": "text/csv"})
        return httpx.Response(200, json=load_fixture("senet/summary.json"))

    # When a whole run talks to it
    senet = adapter(httpx.MockTransport(vendor))
    senet.request(plan_for(EXPORT))
    senet.download(plan_for(EXPORT), None, MemorySink())
    # Then every call carried the bare key (Senet's curl example: -H 'Authorization: <API_KEY>')
    assert headers == [KEY] * 5


def test_senet_wrong_key_is_an_auth_error_naming_no_secret() -> None:
    # Given the vendor refuses the key with 403
    sim = SenetSimulator(euis=EUIS)
    # When the run probes
    with pytest.raises(VendorAuthError) as caught:
        adapter(sim.transport(), key="wrong-senet-key").request(plan_for(EXPORT))
    # Then the message names the status, not the key
    assert "403" in str(caught.value)
    assert "wrong-senet-key" not in str(caught.value)


def test_senet_waits_for_the_just_ended_month_then_becomes_ready() -> None:
    # Given October's data is generated only after two probes
    sim = SenetSimulator(euis=EUIS, unavailable_probes=2)
    senet = sim_adapter(sim)
    plan = plan_for(EXPORT, "2026-10")
    # When RequestReport runs, then CheckReport twice
    requested = senet.request(plan)
    polls = [senet.poll(plan, AVAILABILITY).status for _ in range(2)]
    # Then it is PENDING (waiting for availability), PENDING, READY
    assert (requested.status, requested.report_id) == (JobStatus.PENDING, AVAILABILITY)
    assert polls == [JobStatus.PENDING, JobStatus.READY]


def test_senet_404_for_an_older_month_fails_at_once() -> None:
    # Given August has no data (or the Application is unknown) and the run started in November
    sim = SenetSimulator(euis=EUIS, no_data_periods=frozenset({"2026-08"}))
    # When RequestReport runs / Then there is nothing to wait for
    with pytest.raises(VendorRequestError, match="application not found or no usage data"):
        sim_adapter(sim).request(plan_for(EXPORT, "2026-08"))


def test_senet_download_keeps_one_summary_line_per_application_and_one_csv_each() -> None:
    # Given two Applications of five devices
    sim = SenetSimulator(euis=EUIS, devices=5)
    sink = MemorySink()
    # When downloaded
    sim_adapter(sim).download(plan_for(EXPORT, "2026-10"), None, sink)
    # Then the summaries share one JSON-lines object and each Application has its own details CSV
    assert [(o.key, o.dataset, o.content_type, o.records) for o in sink.objects] == [
        ("senet-fleet-2026-10-summary.jsonl", "senet_application_month", "application/x-ndjson", 2),
        (f"senet-fleet-2026-10-details-{EUIS[0]}.csv", "senet_device_month", "text/csv", 5),
        (f"senet-fleet-2026-10-details-{EUIS[1]}.csv", "senet_device_month", "text/csv", 5),
    ]
    lines = [json.loads(line) for line in sink.files["senet-fleet-2026-10-summary.jsonl"].splitlines()]
    assert [line["request"] for line in lines] == [{"eui": eui, "month": 10, "year": 2026} for eui in EUIS]
    assert lines[1]["response"] == sim.summary(EUIS[1], "2026-10")
    assert sink.files[f"senet-fleet-2026-10-details-{EUIS[0]}.csv"] == b"".join(sim._details(EUIS[0], "2026-10"))
    # And each details file's manifest names its Application (the summary lines name theirs)
    assert sink.params == {f"senet-fleet-2026-10-details-{eui}.csv": {"application_eui": eui} for eui in EUIS}


def test_senet_download_counts_csv_records_not_lines() -> None:
    # Given a details file with CRLF endings and a quoted line break
    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/details"):
            return httpx.Response(200, content=DETAILS, headers={"Content-Type": "text/csv"})
        return httpx.Response(200, json={"numberOfDevices": 3})

    sink = MemorySink()
    # When downloaded
    adapter(httpx.MockTransport(vendor)).download(plan_for(EXPORT), None, sink)
    # Then the raw CSV is kept byte for byte and counts 3 devices, not 4 lines
    assert sink.files[f"senet-fleet-2026-10-details-{EUIS[0]}.csv"] == DETAILS
    assert [o.records for o in sink.objects[1:]] == [3, 3]


def test_senet_later_application_not_generated_yet_is_retryable() -> None:
    # Given the first Application's month is ready but the second's is not yet
    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.params["eui"] == EUIS[1]:
            return httpx.Response(404)
        return httpx.Response(200, json={"numberOfDevices": 1})

    sink = MemorySink()
    # When downloaded / Then the run can be retried later, and nothing half-written is kept
    with pytest.raises(ReportNotAvailableYetError, match=EUIS[1]):
        adapter(httpx.MockTransport(vendor)).download(plan_for(EXPORT), None, sink)
    assert sink.objects == []


def test_senet_summary_that_is_not_an_object_is_a_contract_error() -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[1, 2, 3])

    with pytest.raises(VendorContractError, match="expected a JSON object"):
        adapter(httpx.MockTransport(vendor)).download(plan_for(EXPORT), None, MemorySink())


def test_senet_refuses_a_partial_month_before_any_request() -> None:
    # Given a hand-made window that is not a calendar month (the API only takes month and year)
    sim = SenetSimulator(euis=EUIS)
    window = Window(period="2026-10", start=datetime(2026, 10, 5, tzinfo=UTC), end=datetime(2026, 11, 1, tzinfo=UTC))
    # When PlanRun checks it / Then it is refused and the vendor never hears of it
    with pytest.raises(InvalidExportError, match="calendar month"):
        EXPORT.check_window(window, now=NOW)
    assert sim.seen == []


def test_senet_poll_of_an_unknown_report_id_is_a_contract_error() -> None:
    with pytest.raises(VendorContractError, match="unknown report id"):
        sim_adapter(SenetSimulator(euis=EUIS)).poll(plan_for(EXPORT), "r-1")


def test_senet_missing_api_key_is_a_secret_error() -> None:
    with pytest.raises(SecretError, match="api_key"):
        SenetAdapter(EXPORT, build_client("https://api.senet.test"), {}, VirtualClock(NOW))


@pytest.mark.parametrize("chunk", [1, 2, 7, 1 << 20])
def test_senet_csv_record_counter_counts_records_across_chunk_boundaries(chunk: int) -> None:
    # Given a CSV with CRLF endings, quoted commas, quoted line breaks, escaped quotes and blank lines
    data = DETAILS + b'\r\n\r\n00250C0100000004,"say ""hi""\nthere",C-1,1,1,1,x'
    counter = CsvRecordCounter()
    # When fed in chunks of any size
    for i in range(0, len(data), chunk):
        counter.feed(data[i : i + chunk])
    # Then the four devices are counted (not the header), whatever the chunking
    assert counter.records() == 4
