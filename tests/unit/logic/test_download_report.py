"""DownloadReport: the vendor file into the raw store once per vendor report, as the ledger decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from report_exporter.adapters.base import PollResult, RawSink, RequestResult
from report_exporter.errors import ReportBusyError, ReportTimedOutError, VendorContractError, VendorUnavailableError
from report_exporter.logic.download_report import download_report
from report_exporter.models.exports import ParticleExport
from report_exporter.models.payloads import DownloadInput, JobStatus, RawObject, ReportJob, RunPlan
from tests.fakes import MemoryRawStore, RecordingLedger, plan_for

NOW = datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
EXPORT = ParticleExport(name="particle-demo", secret_name="s")
PLAN = plan_for(EXPORT, now=NOW)
JOB = ReportJob(job="1001", report_id="1001", status=JobStatus.READY, requested_at=NOW)
KEPT = RawObject(dataset="particle_data_operations", key="raw/particle/particle-demo/2026-10/report-1001.csv",
                 bytes=3, sha256="a" * 64, content_type="text/csv", records=1)


@dataclass
class Vendor:
    files: dict[str, bytes] = field(default_factory=lambda: {"report-1001.csv": b"a\n1\n"})
    cadence: tuple[int, ...] = (15,)
    timeout_error: type[Exception] = ReportTimedOutError
    downloads: list[tuple[RunPlan, str | None]] = field(default_factory=list)
    error: Exception | None = None

    def request(self, plan: RunPlan) -> RequestResult:
        raise AssertionError("not called")

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        raise AssertionError("not called")

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        self.downloads.append((plan, report_id))
        for name, data in self.files.items():
            with sink.open(dataset="particle_data_operations", name=name, content_type="text/csv") as out:
                out.write(data)
        if self.error is not None:
            raise self.error


def download(vendor: Vendor, ledger: RecordingLedger, store: MemoryRawStore | None = None):  # type: ignore[no-untyped-def]
    return download_report(DownloadInput(plan=PLAN, job=JOB), adapter=vendor, raw=store or MemoryRawStore(),  # type: ignore[arg-type]
                           ledger=ledger, now=NOW)


def test_the_report_is_streamed_into_the_runs_raw_store_and_recorded() -> None:
    vendor, ledger, store = Vendor(), RecordingLedger(), MemoryRawStore()
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
    vendor, store = Vendor(), MemoryRawStore()
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


def test_a_failed_download_is_not_recorded_and_its_error_is_the_runs() -> None:
    # Given a vendor whose download breaks after it wrote its file
    ledger = RecordingLedger()
    with pytest.raises(VendorUnavailableError, match=r"^connection reset$"):
        download(Vendor(error=VendorUnavailableError("connection reset")), ledger)
    # Then the ledger holds the download lease but was told of no raw object
    assert ledger.names() == ["begin_download"]


def test_the_resume_cursor_of_the_sink_is_kept_on_the_ledger_under_this_job() -> None:
    # Given a download, and the cursor store the raw store was given for it
    ledger, store = RecordingLedger(), MemoryRawStore()
    download(Vendor(), ledger, store)
    (resume,) = store.resumes
    assert resume is not None
    ledger.calls.clear()
    cursor: dict[str, Any] = {"key": "k", "upload_id": "u", "etags": ["e1"], "bytes": 8, "state": {"page": 2}}
    # When the sink saves, loads and clears its cursor
    resume.save(cursor)
    loaded = resume.load()
    resume.clear()
    # Then each goes to the ledger, for this job's download
    assert loaded == {**cursor, "job": "1001"}
    assert ledger.calls == [("save_download_cursor", {"job": "1001"}), ("download_cursor", {"job": "1001"}),
                            ("clear_download_cursor", {"job": "1001"})]
    assert resume.load() is None


def test_a_download_another_execution_is_running_is_busy_and_touches_no_store() -> None:
    @dataclass
    class BusyLedger(RecordingLedger):
        def begin_download(self, plan: RunPlan, *, job: str, now: datetime) -> list[RawObject] | None:
            raise ReportBusyError("execution x is downloading this report right now")

    vendor, store = Vendor(), MemoryRawStore()
    with pytest.raises(ReportBusyError, match="downloading this report right now"):
        download(vendor, BusyLedger(), store)
    assert vendor.downloads == [] and store.sinks == []
