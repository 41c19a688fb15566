"""Resume, don't restart: a fault half-way through a download, end to end through the synthesized state machine.

For each paginated vendor a fault on page N, for each file vendor a fault at byte K: each page and byte is
fetched once more at most, and the Parquet is the one a fault-free run writes. Every fault comes from the
run's FaultPlan; every run starts at the same virtual time, so a faulty run and its fault-free twin differ
only by the fault (and ``exported_at``, the time WriteParquet ran).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from report_exporter.aws.s3 import PART_SIZE, UPLOAD_WINDOW
from report_exporter.clock import VirtualClock
from report_exporter.local.demo import demo_exports
from report_exporter.local.faults import Answer, Crash, FaultPlan, Reset, Stop
from report_exporter.local.runner import LocalEnvironment, RunResult
from report_exporter.local.simulators.base import Simulator, times_served
from report_exporter.models.exports import ExportSpec
from report_exporter.ports import RunStatus
from report_exporter.vendors.here.simulator import HereSimulator
from report_exporter.vendors.kore.simulator import KoreSimulator
from report_exporter.vendors.particle.simulator import ParticleSimulator
from report_exporter.vendors.senet.simulator import SenetSimulator
from report_exporter.vendors.telnyx.simulator import TelnyxSimulator
from tests.local.conftest import PERIOD, START

EXPORTS = {e.vendor_name.value: e for e in demo_exports().exports}


@dataclass
class Outcome:
    result: RunResult
    raw: dict[str, Any]
    """The raw object DownloadReport recorded (key, bytes, sha256, records)."""
    data: bytes
    """The raw object's bytes."""
    table: pa.Table
    """The published Parquet, without ``exported_at`` (the time WriteParquet ran)."""


@contextmanager
def environment(templates: dict[str, dict[str, Any]], faults: FaultPlan) -> Iterator[LocalEnvironment]:
    with LocalEnvironment(demo_exports(), templates=templates, clock=VirtualClock(START), faults=faults) as env:
        yield env


def run(templates: dict[str, dict[str, Any]], export: ExportSpec, sim: Simulator,
        faults: FaultPlan | None = None) -> Outcome:
    """One run in a fresh environment against ``sim`` (started here unless it serves already)."""
    with environment(templates, faults or FaultPlan()) as env, serving(sim):
        result = env.run(export, period=PERIOD, simulator=sim, timeout=600)
        assert result.succeeded, result.cause
        assert result.output is not None
        (raw,) = result.output["raw"]["objects"]
        (curated,) = result.output["curated"]["objects"]
        table = pq.read_table(io.BytesIO(env.read("curated", curated["key"])))
        # No multipart upload is left open, whatever was resumed or dropped on the way.
        import boto3

        uploads = boto3.client("s3").list_multipart_uploads(Bucket=env.buckets["raw"]).get("Uploads", [])
        assert uploads == []
        return Outcome(result, raw, env.read("raw", raw["key"]), table.drop_columns(["exported_at"]))


@contextmanager
def serving(sim: Simulator) -> Iterator[Simulator]:
    if sim.base_url.startswith("http://127.0.0.1"):
        yield sim
        return
    with sim:
        yield sim


def assert_same_as_fault_free(faulty: Outcome, fault_free: Outcome) -> None:
    """The raw object byte for byte (its sha256 and record count exact) and the Parquet, row for row."""
    assert faulty.data == fault_free.data
    assert faulty.raw == fault_free.raw
    assert faulty.raw["sha256"] == hashlib.sha256(faulty.data).hexdigest()
    assert faulty.table.num_rows == fault_free.table.num_rows == faulty.raw["records"]
    assert faulty.table.equals(fault_free.table)


def page_counts(served: list[Any]) -> Counter[Any]:
    return Counter(served)


def assert_resumed_after_a_kept_part(counts: Counter[int], failed: int) -> None:
    """Pages before the last kept part were fetched once; the ones after it (up to the failed page) twice."""
    twice = sorted(p for p, n in counts.items() if n == 2)
    assert set(counts.values()) <= {1, 2}, counts
    assert twice, "nothing was fetched again: the fault did not make the Lambda give up"
    assert twice == list(range(twice[0], failed)), twice
    assert counts[1] == 1, "the next attempt started over instead of resuming"


# Paginated vendors: Telnyx (page[number]) and KORE (next_page_url).

TELNYX_ROWS = 18 * 5000  # 18 pages of ~0.7 MB: the first 8 MiB part is kept after page 12


def telnyx_pages(sim: TelnyxSimulator) -> Counter[int]:
    return page_counts([page for _, page in sim.served])


def test_telnyx_a_503_on_page_3_is_fetched_again_in_place(local_templates: dict[str, dict[str, Any]]) -> None:
    # Given a report of 4 pages whose page 3 answers 503 once
    export, rows = EXPORTS["telnyx"], 3 * 5000 + 11
    fault_free = run(local_templates, export, TelnyxSimulator(rows=rows))
    sim = TelnyxSimulator(rows=rows)
    faults = FaultPlan([Answer(path="usage_reports", status=503, query="page[number]=3")])
    # When the export runs
    faulty = run(local_templates, export, sim, faults)
    # Then the page was asked for again inside the Lambda: no Step Functions retry, each page served once
    assert faults.fired and faulty.result.task_errors("DownloadReport") == [] and faulty.result.retries == []
    assert telnyx_pages(sim) == {1: 1, 2: 1, 3: 1, 4: 1}
    assert_same_as_fault_free(faulty, fault_free)


def test_telnyx_when_the_lambda_gives_up_on_page_17_the_retry_resumes_after_the_kept_part(
        local_templates: dict[str, dict[str, Any]]) -> None:
    # Given 18 pages, page 17 failing five times in a row: more than DownloadReport retries in place
    export = EXPORTS["telnyx"]
    fault_free = run(local_templates, export, TelnyxSimulator(rows=TELNYX_ROWS))
    sim = TelnyxSimulator(rows=TELNYX_ROWS)
    faults = FaultPlan([Answer(path="usage_reports", status=503, query="page[number]=17", times=5)])
    # When the export runs
    faulty = run(local_templates, export, sim, faults)
    # Then DownloadReport gave up once and Step Functions retried it
    (error, _), = faulty.result.task_errors("DownloadReport")
    assert error == "VendorUnavailableError"
    # And the retry resumed after the pages in the kept part: only those after it were fetched again
    counts = telnyx_pages(sim)
    assert_resumed_after_a_kept_part(counts, failed=17)
    assert sum(counts.values()) - len(counts) < 18 // 2
    # And the Parquet is the fault-free run's
    assert_same_as_fault_free(faulty, fault_free)


KORE_RECORDS = 14 * 1000  # 14 pages of ~0.9 MB: the first 8 MiB part is kept after page 10


def kore_pages(sim: KoreSimulator) -> Counter[int]:
    return page_counts([offset // 1000 + 1 for offset in sim.served])


def test_kore_a_503_on_page_3_is_fetched_again_in_place(local_templates: dict[str, dict[str, Any]]) -> None:
    # (one simulator for both runs: KORE's pages carry their URLs, so the raw bytes name its port)
    export = EXPORTS["kore"]
    with KoreSimulator(records=3500) as sim:
        fault_free = run(local_templates, export, sim)
        sim.served.clear()
        faults = FaultPlan([Answer(path="UsageRecords", status=503, query="Page=2&")])
        faulty = run(local_templates, export, sim, faults)
    assert faults.fired and faulty.result.task_errors("DownloadReport") == []
    assert kore_pages(sim) == {1: 1, 2: 1, 3: 1, 4: 1}
    assert_same_as_fault_free(faulty, fault_free)


def test_kore_when_the_lambda_gives_up_on_page_13_the_retry_resumes_at_the_kept_next_page(
        local_templates: dict[str, dict[str, Any]]) -> None:
    export = EXPORTS["kore"]
    with KoreSimulator(records=KORE_RECORDS) as sim:
        fault_free = run(local_templates, export, sim)
        sim.served.clear()
        # (KORE's pages are Page=0, 1, ... in the next_page_url: page 13 is Page=12)
        faults = FaultPlan([Answer(path="UsageRecords", status=503, query="Page=12&", times=5)])
        faulty = run(local_templates, export, sim, faults)
    (error, _), = faulty.result.task_errors("DownloadReport")
    assert error == "VendorUnavailableError"
    assert_resumed_after_a_kept_part(kore_pages(sim), failed=13)
    assert_same_as_fault_free(faulty, fault_free)


# File vendors: Particle's pre-signed link serves ranges; HERE's /output, by default, does not.

PARTICLE_ROWS = 200_000  # a 20 MB CSV: two 8 MiB parts and a tail


def particle_sim() -> ParticleSimulator:
    return ParticleSimulator(pending_polls=0, rows=PARTICLE_ROWS, devices=40, preamble=True)


def particle_bytes(sim: ParticleSimulator) -> tuple[Counter[int], list[tuple[int, int]], int]:
    (report_id,) = sim.reports
    served = sim.bytes_served(report_id)
    size = len(sim.file(report_id))
    return times_served(served, size), served, size


def test_particle_a_reset_at_byte_13000123_goes_on_with_range_in_place(
        local_templates: dict[str, dict[str, Any]]) -> None:
    # Given the connection of the download drops after 13,000,123 bytes
    export = EXPORTS["particle"]
    fault_free = run(local_templates, export, particle_sim())
    sim = particle_sim()
    faults = FaultPlan([Reset(path="/download/", after=13_000_123)])
    # When the export runs
    faulty = run(local_templates, export, sim, faults)
    # Then the same invocation went on from byte 13,000,123 (a fresh link, Range): nothing fetched twice
    # but the simulator's chunk that straddled the cut
    histogram, served, size = particle_bytes(sim)
    assert faults.fired and faulty.result.task_errors("DownloadReport") == []
    assert served[1] == (13_000_123, size)
    assert set(histogram) <= {1, 2} and histogram[2] <= 1 << 16
    assert_same_as_fault_free(faulty, fault_free)


def test_particle_a_download_that_dies_is_resumed_by_the_retry_from_the_kept_part(
        local_templates: dict[str, dict[str, Any]]) -> None:
    # Given DownloadReport's process dies before it uploads its second part (16 MiB read, 8 MiB kept)
    export = EXPORTS["particle"]
    fault_free = run(local_templates, export, particle_sim())
    sim = particle_sim()
    faults = FaultPlan([Crash(state="DownloadReport", effect="s3:UploadPart", nth=2)])
    # When the export runs
    faulty = run(local_templates, export, sim, faults)
    # Then Step Functions retried the dead Lambda, which asked for a fresh link and the bytes after the kept part
    (error, _), = faulty.result.task_errors("DownloadReport")
    assert error == "Lambda.Unknown"
    histogram, served, size = particle_bytes(sim)
    # (a part is cut at the first chunk boundary past 8 MiB: the retry starts there)
    kept = served[1][0]
    assert served[0][0] == 0 and PART_SIZE <= kept < PART_SIZE + (1 << 16) and served[1][1] == size
    # And only the bytes between the kept part and the death were fetched twice: the part that died on the
    # uploader thread and what the download read before it learned of that (at most the parts in flight)
    assert histogram[1] + histogram[2] == size
    assert 0 < histogram[2] <= (1 + UPLOAD_WINDOW) * PART_SIZE + (1 << 16)
    assert len(sim.calls("GET", "/usage_reports/")) >= 2  # one link per request, none kept
    # And the raw object's sha256 and record count (read back once) are the fault-free run's
    assert_same_as_fault_free(faulty, fault_free)


def test_the_cursor_kept_in_the_ledger_holds_no_link(local_templates: dict[str, dict[str, Any]]) -> None:
    # Given a download that kept a part, then died, and whose execution was then stopped
    faults = FaultPlan([Crash(state="DownloadReport", effect="s3:UploadPart", nth=2),
                        Stop(state="DownloadReport", invocation=1)])
    with environment(local_templates, faults) as env, particle_sim() as sim:
        result = env.run(EXPORTS["particle"], period=PERIOD, simulator=sim)
        item = env.ledger_item("particle-demo", PERIOD)
        signatures = [r.signature for r in sim.reports.values()]
    assert result.status == "ABORTED" and item["status"] == RunStatus.FAILED, (result.status, faults.fired)
    # Then the ledger's cursor names the upload and the kept part, and of the file only its ETag and size
    cursor = json.loads(str(item["download_cursor"]))
    assert PART_SIZE <= cursor["bytes"] < PART_SIZE + (1 << 16) and len(cursor["etags"]) == 1
    assert set(cursor["state"]) == {"validator", "length"}
    text = json.dumps(item, default=str)
    assert "://" not in text and "Signature" not in text and all(s not in text for s in signatures)
    assert sim.token not in text


HERE_ROWS = 40_000  # stored uncompressed in its gzip (level 0): 11 MB


@pytest.mark.parametrize("ranges", [False, True], ids=["no ranges: read again", "ranges: goes on"])
def test_here_a_reset_at_byte_9000001_reads_again_or_goes_on(ranges: bool,
                                                           local_templates: dict[str, dict[str, Any]]) -> None:
    export = EXPORTS["here"]
    fault_free = run(local_templates, export, HereSimulator(pending_polls=0, rows=HERE_ROWS, compresslevel=0))
    sim = HereSimulator(pending_polls=0, rows=HERE_ROWS, compresslevel=0, ranges=ranges)
    faults = FaultPlan([Reset(path="/output", after=9_000_001)])
    faulty = run(local_templates, export, sim, faults)
    (report,) = sim.reports.values()
    served = [(start, end) for start, end in report.served]
    assert faulty.result.task_errors("DownloadReport") == []
    assert served[1][0] == (9_000_001 if ranges else 0)
    assert set(times_served(served, len(faulty.data))) <= {1, 2}
    assert_same_as_fault_free(faulty, fault_free)


# Senet: a summary and a details file per Application, each asked for again in place.

def senet_requests(sim: SenetSimulator) -> Counter[tuple[str, str]]:
    return Counter((c.path.rsplit("/", 1)[-1], c.query.get("eui", [""])[0]) for c in sim.calls("GET", "/usage/"))


def senet_run(templates: dict[str, dict[str, Any]], sim: SenetSimulator,
              faults: FaultPlan | None = None) -> tuple[RunResult, dict[str, bytes]]:
    """A Senet run and its curated files by key (without ``exported_at``, written by WriteParquet)."""
    with environment(templates, faults or FaultPlan()) as env:
        result = env.run(EXPORTS["senet"], period=PERIOD, simulator=sim, timeout=600)
        assert result.succeeded, result.cause
        assert result.output is not None
        curated = {o["key"]: pq.read_table(io.BytesIO(env.read("curated", o["key"]))).drop_columns(["exported_at"])
                   for o in result.output["curated"]["objects"]}
        return result, curated


@pytest.mark.parametrize("fault", [
    Answer(path="usage/details", status=503, query="eui=00250C0000010002"),
    Answer(path="usage/summary", status=429, query="eui=00250C0000010002", headers=(("Retry-After", "7"),)),
    Reset(path="usage/details", after=1000, nth=2),
], ids=["503 on the second details", "429 on the second summary", "reset in the second details"])
def test_senet_a_fault_on_the_second_application_fetches_only_that_file_again(
        fault: Answer | Reset, local_templates: dict[str, dict[str, Any]]) -> None:
    # Given two Applications, and a fault on the second one's summary or details
    fault_free_sim = SenetSimulator(devices=400)
    fault_free, fault_free_tables = senet_run(local_templates, fault_free_sim)
    sim = SenetSimulator(devices=400)
    faults = FaultPlan([fault])
    # When the export runs
    faulty, tables = senet_run(local_templates, sim, faults)
    # Then no Step Functions retry: only the failed request was sent once more, in place (an Answer fault
    # answers in the simulator's stead, a Reset cuts the simulator's own answer)
    assert len(faults.fired) == 1 and faulty.task_errors("DownloadReport") == [] and faulty.retries == []
    path = "details" if "details" in fault.path else "summary"
    again = Counter({(path, "00250C0000010002"): 1}) if isinstance(fault, Reset) else Counter()
    assert senet_requests(sim) - senet_requests(fault_free_sim) == again
    assert senet_requests(fault_free_sim) - senet_requests(sim) == Counter()
    # And the raw objects and the Parquet are the fault-free run's
    assert faulty.output is not None and fault_free.output is not None
    assert faulty.output["raw"] == fault_free.output["raw"]
    assert tables.keys() == fault_free_tables.keys()
    assert all(tables[k].equals(fault_free_tables[k]) for k in tables)
