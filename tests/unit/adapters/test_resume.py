"""Downloads that survive a fault half-way: pages asked for again in place, files continued with Range, and
the next attempt resuming from what an earlier one kept (MemorySink stands in for the S3 parts and the
ledger's cursor; tests/integration/test_raw_sink.py has the real ones).

Faults come from the local runner's FaultPlan through its transport, in front of each vendor's simulator.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr

from report_exporter.adapters.auth import clear_token_cache
from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from report_exporter.errors import VendorUnavailableError
from report_exporter.local.faults import Answer, FaultPlan, Reset
from report_exporter.local.simulators.base import times_served
from report_exporter.local.transport import VendorTransport
from report_exporter.models.exports import HereExport, KoreExport, ParticleExport, TelnyxExport
from report_exporter.models.payloads import RawObject
from report_exporter.vendors.here.adapter import HereAdapter
from report_exporter.vendors.here.simulator import HereSimulator
from report_exporter.vendors.kore.adapter import KoreAdapter
from report_exporter.vendors.kore.simulator import KoreSimulator
from report_exporter.vendors.particle.adapter import ParticleAdapter
from report_exporter.vendors.particle.simulator import ParticleSimulator
from report_exporter.vendors.telnyx.adapter import PAGE_SIZE, TelnyxAdapter
from report_exporter.vendors.telnyx.simulator import TelnyxSimulator
from tests.fakes import MemorySink, SleepLog, plan_for

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
TELNYX = TelnyxExport(name="telnyx-usage", secret_name="s/telnyx", product="messaging",
                      dimensions=("direction", "currency"), metrics=("cost", "parts"))
PARTICLE = ParticleExport(name="particle-user", secret_name="s/particle")
UNAVAILABLE = Answer(path="", status=503, body=b'{"errors": [{"code": "10007", "title": "Unavailable"}]}',
                     content_type="application/json")




@pytest.fixture(autouse=True)
def _fresh_tokens() -> Iterator[None]:
    clear_token_cache()
    yield
    clear_token_cache()


def faulty(base_url: str, sim_transport: httpx.BaseTransport, faults: FaultPlan, clock: VirtualClock,
           remaining: Callable[[], float] | None = None) -> httpx.Client:
    """A client to the simulator through the local runner's transport, which injects ``faults``."""
    transport = VendorTransport(clock, faults)
    transport.route(base_url, sim_transport)
    return build_client(base_url, transport=transport, remaining=remaining)


def only(sink: MemorySink) -> tuple[RawObject, bytes]:
    (raw,) = sink.objects
    return raw, sink.files[raw.key]


def kept_by_failed_attempt(download: Callable[[MemorySink], None]) -> MemorySink:
    """Run a download that fails for good, keeping every checkpoint (a part per page); the next attempt's sink."""
    first = MemorySink(part_size=1)
    with pytest.raises(VendorUnavailableError):
        download(first)
    assert first.objects == [] and first.last is not None and first.last.cursor is not None
    return MemorySink(resume=(first.last.kept, first.last.cursor))


# Telnyx.

def telnyx(sim: TelnyxSimulator, faults: FaultPlan, clock: VirtualClock | None = None,
           remaining: Callable[[], float] | None = None) -> TelnyxAdapter:
    clock = clock or VirtualClock(NOW)
    client = faulty("https://api.telnyx.test/v2", sim.transport(), faults, clock, remaining)
    return TelnyxAdapter(TELNYX, client, {"api_key": SecretStr(sim.api_key)}, clock)


def telnyx_fault_free(rows: int) -> bytes:
    sink = MemorySink()
    telnyx(TelnyxSimulator(rows=rows), FaultPlan()).download(plan_for(TELNYX), None, sink)
    return only(sink)[1]


def test_telnyx_a_503_on_page_3_is_asked_for_again_in_place() -> None:
    # Given a report of four pages whose page 3 fails once with a 503
    sim, clock = TelnyxSimulator(rows=3 * PAGE_SIZE + 1), SleepLog(NOW)
    faults = FaultPlan([Answer(path="usage_reports", status=503, query="page[number]=3")])
    sink = MemorySink()
    # When downloaded
    telnyx(sim, faults, clock).download(plan_for(TELNYX), None, sink)
    # Then page 3 was asked for again after a second, inside the same attempt, and each page served once
    assert [page for _, page in sim.served] == [1, 2, 3, 4]
    assert clock.sleeps == [1.0] and len(faults.fired) == 1
    raw, data = only(sink)
    assert raw.records == sim.rows and data == telnyx_fault_free(sim.rows)


def test_telnyx_the_next_attempt_resumes_after_the_pages_kept() -> None:
    # Given an attempt that gave up on page 3 (five 503s in a row), after keeping pages 1 and 2
    sim = TelnyxSimulator(rows=3 * PAGE_SIZE + 1)
    faults = FaultPlan([Answer(path="usage_reports", status=503, query="page[number]=3", times=5)])
    resumed = kept_by_failed_attempt(lambda sink: telnyx(sim, faults).download(plan_for(TELNYX), None, sink))
    # When the next attempt runs
    telnyx(sim, faults).download(plan_for(TELNYX), None, resumed)
    # Then it asked only for pages 3 and 4: no page was fetched twice
    assert [page for _, page in sim.served] == [1, 2, 3, 4]
    raw, data = only(resumed)
    assert raw.records == sim.rows and data == telnyx_fault_free(sim.rows)


def test_telnyx_a_cursor_for_another_query_is_not_resumed() -> None:
    sim = TelnyxSimulator(rows=PAGE_SIZE + 1)
    sink = MemorySink(resume=(b'{"stale": true}\n', {"query": "another", "range": 0, "page": 2}))
    telnyx(sim, FaultPlan()).download(plan_for(TELNYX), None, sink)
    assert [page for _, page in sim.served] == [1, 2] and sink.last is not None and sink.last.restarts == 1
    assert only(sink)[1] == telnyx_fault_free(sim.rows)


def test_telnyx_no_retry_in_place_without_time_for_it() -> None:
    # Given 12 s left in the invocation: after the 5 s call margin, a 1 s wait leaves less than a call needs
    sim, clock = TelnyxSimulator(rows=10), SleepLog(NOW)
    faults = FaultPlan([Answer(path="usage_reports", status=503)])
    # When the page fails / Then the error goes to Step Functions at once, nothing slept
    with pytest.raises(VendorUnavailableError):
        telnyx(sim, faults, clock, remaining=lambda: 12.0).download(plan_for(TELNYX), None, MemorySink())
    assert clock.sleeps == []


# KORE.

def kore_adapter(sim: KoreSimulator, faults: FaultPlan) -> KoreAdapter:
    sim.base_url = "https://kore.test"
    sim.clock = VirtualClock(NOW)
    export = KoreExport(name="kore-main", secret_name="kore/main", base_url=sim.base_url, token_url=sim.token_url)
    client = faulty(sim.base_url, sim.transport(), faults, sim.clock)
    creds = {k: SecretStr(v) for k, v in sim.credentials().items()}
    return KoreAdapter(export, client, creds, sim.clock)


def kore_fault_free(records: int) -> bytes:
    sink = MemorySink()
    kore_adapter(KoreSimulator(records=records, page_size=10), FaultPlan()).download(
        plan_for(KoreExport(name="kore-main", secret_name="kore/main")), None, sink)
    return only(sink)[1]


def test_kore_a_503_on_page_3_is_asked_for_again_in_place() -> None:
    sim = KoreSimulator(records=45, page_size=10)
    faults = FaultPlan([Answer(path="UsageRecords", status=503, query="Page=2&")])
    sink = MemorySink()
    kore_adapter(sim, faults).download(plan_for(KoreExport(name="kore-main", secret_name="kore/main")), None, sink)
    assert sim.served == [0, 10, 20, 30, 40] and len(faults.fired) == 1
    raw, data = only(sink)
    assert raw.records == 45 and data == kore_fault_free(45)


def test_kore_the_next_attempt_resumes_at_the_next_page_url_kept() -> None:
    # Given an attempt that gave up on page 3 (five 503s in a row), after keeping pages 1 and 2
    sim = KoreSimulator(records=45, page_size=10)
    faults = FaultPlan([Answer(path="UsageRecords", status=503, query="Page=2&", times=5)])
    plan = plan_for(KoreExport(name="kore-main", secret_name="kore/main"))
    resumed = kept_by_failed_attempt(lambda sink: kore_adapter(sim, faults).download(plan, None, sink))
    # (the cursor holds the next page as a path on the API host, never a full URL)
    assert resumed.resume is not None and str(resumed.resume[1]["next"]).startswith("/v1/UsageRecords?")
    # When the next attempt runs / Then it starts at page 3 and every record arrives once
    kore_adapter(sim, faults).download(plan, None, resumed)
    assert sim.served == [0, 10, 20, 30, 40]
    raw, data = only(resumed)
    assert raw.records == 45 and data == kore_fault_free(45)


# Particle: a pre-signed link that serves byte ranges.

def particle(sim: ParticleSimulator, faults: FaultPlan) -> tuple[ParticleAdapter, str]:
    sim.base_url = "http://particle.test"
    clock = VirtualClock(NOW)
    client = faulty(sim.base_url, sim.transport(), faults, clock)
    report = sim.add_ready_report(datetime(2026, 10, 1).date(), datetime(2026, 10, 31).date())
    return ParticleAdapter(PARTICLE, client, {"access_token": SecretStr(sim.token)}, clock), report


def test_particle_a_reset_mid_file_goes_on_with_range_from_the_next_byte() -> None:
    # Given a 2.4 MB report whose connection drops after 1,000,003 bytes
    sim = ParticleSimulator(rows=20_000, pending_polls=0)
    faults = FaultPlan([Reset(path="/download/", after=1_000_003)])
    adapter, report = particle(sim, faults)
    sink = MemorySink()
    # When downloaded
    adapter.download(plan_for(PARTICLE), report, sink)
    # Then the rest came with Range from byte 1,000,003 on a fresh link, and the raw object is exact
    file = sim.file(report)
    served = sim.bytes_served(report)
    assert len(served) == 2 and served[1] == (1_000_003, len(file))
    assert times_served(served, len(file))[1] >= len(file) - (1 << 16)  # at most a chunk handed out twice
    raw, data = only(sink)
    assert data == file and raw.sha256 == hashlib.sha256(file).hexdigest() and raw.records == 20_000
    assert len(sim.calls("GET", "usage_reports/")) == 2


def test_particle_a_link_without_ranges_is_read_again_from_the_first_byte() -> None:
    sim = ParticleSimulator(rows=20_000, pending_polls=0, ranges=False)
    adapter, report = particle(sim, FaultPlan([Reset(path="/download/", after=1_000_003)]))
    sink = MemorySink()
    adapter.download(plan_for(PARTICLE), report, sink)
    file = sim.file(report)
    assert sim.bytes_served(report)[1] == (0, len(file))
    assert max(times_served(sim.bytes_served(report), len(file))) == 2
    raw, data = only(sink)
    assert data == file and raw.records == 20_000  # the record counter started over with the file


def test_particle_the_next_attempt_resumes_from_the_bytes_kept_and_keeps_no_link() -> None:
    # Given an earlier attempt that kept the first 1 MiB and the file's ETag and size
    sim = ParticleSimulator(rows=20_000, pending_polls=0)
    adapter, report = particle(sim, FaultPlan())
    probe = MemorySink(part_size=1 << 20)
    adapter.download(plan_for(PARTICLE), report, probe)
    assert probe.last is not None and probe.last.cursor is not None
    cursor = probe.last.cursor
    # (the cursor is the file's ETag and size: no link, no signature)
    assert set(cursor) == {"validator", "length"} and "Signature" not in json.dumps(probe.last.checkpoints)
    file = sim.file(report)
    kept = file[: 1 << 20]
    sim.reports[report].served.clear()
    # When the next attempt resumes
    sink = MemorySink(resume=(kept, cursor))
    adapter.download(plan_for(PARTICLE), report, sink)
    # Then only the bytes after the kept ones were fetched, and the counts (read back) are exact
    assert sim.bytes_served(report) == [(1 << 20, len(file))]
    raw, data = only(sink)
    assert data == file and raw.records == 20_000


def test_particle_a_file_that_changed_since_the_bytes_kept_is_read_again_whole() -> None:
    sim = ParticleSimulator(rows=5_000, pending_polls=0)
    adapter, report = particle(sim, FaultPlan())
    file = sim.file(report)
    sink = MemorySink(resume=(b"x" * 1000, {"validator": '"an older file"', "length": len(file) + 7}))
    adapter.download(plan_for(PARTICLE), report, sink)
    assert sim.bytes_served(report) == [(0, len(file))]
    raw, data = only(sink)
    assert data == file and raw.records == 5_000


# HERE: /output does not document ranges.

def here_adapter(sim: HereSimulator, faults: FaultPlan) -> tuple[HereAdapter, str]:
    sim.base_url = "https://usage.here.test"
    sim.clock = VirtualClock(NOW)
    export = HereExport(name="here-main", secret_name="here/main", realm="org123456789", base_url=sim.base_url,
                        token_url=sim.url("/oauth2/token"))
    client = faulty(sim.base_url, sim.transport(), faults, sim.clock)
    report = sim.add_report(datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)).id
    creds = {name: SecretStr(value) for name, value in sim.credentials().items()}
    return HereAdapter(export, client, creds, sim.clock), report


@pytest.mark.parametrize("ranges", [False, True], ids=["no ranges: from byte 0", "ranges: from the next byte"])
def test_here_a_reset_mid_file_starts_over_or_goes_on_as_the_server_allows(ranges: bool) -> None:
    sim = HereSimulator(rows=4_000, compresslevel=1, ranges=ranges)
    adapter, report = here_adapter(sim, FaultPlan([Reset(path="/output", after=50_001)]))
    sink = MemorySink()
    adapter.download(plan_for(HereExport(name="here-main", secret_name="here/main", realm="org123456789")),
                     report, sink)
    raw, data = only(sink)
    served = [tuple(r) for r in sim.reports[report].served]
    assert served[1][0] == (50_001 if ranges else 0) and len(served) == 2
    assert max(times_served(served, len(data))) == 2
    assert raw.records == 4_000 and gzip.decompress(data).count(b"\n") == 4_001
