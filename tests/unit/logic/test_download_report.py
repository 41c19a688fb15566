"""DownloadReport: the vendor file into the raw store once per vendor report, as the ledger decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from report_exporter.adapters.base import PollResult, RawSink, RequestResult
from report_exporter.errors import ReportTimedOutError, VendorContractError
from report_exporter.logic.download_report import download_report
from report_exporter.models.exports import ParticleExport
from report_exporter.models.payloads import DownloadInput, JobStatus, RawObject, ReportJob, RunPlan
from tests.fakes import MemorySink, RecordingLedger, plan_for

NOW = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
EXPORT = ParticleExport(name="particle-demo", secret_name="s")
PLAN = plan_for(EXPORT, now=NOW)
JOB = ReportJob(job="1001", report_id="1001", status=JobStatus.READY, requested_at=NOW)
KEPT = RawObject(dataset="particle_data_operations", key="raw/particle/particle-demo/2026-10/report-1001.csv",
                 bytes=3, sha256="a" * 64, content_type="text/csv", records=1)


@dataclass
class Store:
    sinks: list[tuple[RunPlan, MemorySink]] = field(default_factory=list)
    described: list[dict[str, object]] = field(default_factory=list)
    """Per sink, what its objects' manifests would name: the report, the job and when."""

    def sink(self, plan: RunPlan, *, resume: object = None, report_id: str | None = None, job: str | None = None,
             now: datetime | None = None) -> MemorySink:
        self.sinks.append((plan, MemorySink()))
        self.described.append({"report_id": report_id, "job": job, "now": now})
        return self.sinks[-1][1]


@dataclass
class Vendor:
    files: dict[str, bytes] = field(default_factory=lambda: {"report-1001.csv": b"a\n1\n"})
    cadence: tuple[int, ...] = (15,)
    timeout_error: type[Exception] = ReportTimedOutError
    downloads: list[tuple[RunPlan, str | None]] = field(default_factory=list)

    def request(self, plan: RunPlan) -> RequestResult:
        raise AssertionError("not called")

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        raise AssertionError("not called")

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        self.downloads.append((plan, report_id))
        for name, data in self.files.items():
            with sink.open(dataset="particle_data_operations", name=name, content_type="text/csv") as out:
                out.write(data)


def download(vendor: Vendor, ledger: RecordingLedger, store: Store | None = None):  # type: ignore[no-untyped-def]
    return download_report(DownloadInput(plan=PLAN, job=JOB), adapter=vendor, raw=store or Store(),  # type: ignore[arg-type]
                           ledger=ledger, now=NOW)


def test_the_report_is_streamed_into_the_runs_raw_store_and_recorded() -> None:
    vendor, ledger, store = Vendor(), RecordingLedger(), Store()
    out = download(vendor, ledger, store)
    # The vendor was asked for this run's report, into a sink of this run
    assert vendor.downloads == [(PLAN, "1001")]
    ((plan, sink),) = store.sinks
    assert plan == PLAN and sink.files == {"report-1001.csv": b"a\n1\n"}
    # And the manifests beside the raw objects name the vendor report, the job and the download time
    assert store.described == [{"report_id": "1001", "job": "1001", "now": NOW}]
    # And the ledger took the download lease, then kept what was written
    assert ledger.calls == [
        ("begin_download", {"job": "1001", "execution": PLAN.execution_id, "now": NOW}),
        ("downloaded", {"job": "1001", "objects": sink.objects, "execution": PLAN.execution_id, "now": NOW}),
    ]
    assert out.objects == tuple(sink.objects)


def test_a_report_another_execution_kept_is_reused_not_downloaded_again() -> None:
    vendor, store = Vendor(), Store()
    out = download(vendor, RecordingLedger(kept_raw=[KEPT]), store)
    assert out.objects == (KEPT,)
    assert vendor.downloads == [] and store.sinks == []


def test_when_the_ledger_keeps_another_executions_file_that_one_is_returned() -> None:
    # Given this download's lease was taken over and the other execution recorded its raw file first
    out = download(Vendor(), RecordingLedger(keeps=[KEPT]))
    assert out.objects == (KEPT,)


def test_a_download_that_produced_no_file_is_a_contract_error() -> None:
    ledger = RecordingLedger()
    with pytest.raises(VendorContractError, match=r"^particle download produced no file$"):
        download(Vendor(files={}), ledger)
    assert ledger.names() == ["begin_download"]
