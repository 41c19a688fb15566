"""The raw sink on S3 (moto): what stays behind when a download fails half-way."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from report_exporter.aws import clients
from report_exporter.aws.s3 import MultipartWriter, S3CuratedStore, S3RawSink, read_manifest
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import ParticleExport, SenetExport
from report_exporter.models.manifest import RawManifest
from tests.fakes import plan_for
from tests.integration.conftest import Buckets

PART = 8 * 1024 * 1024


def open_uploads(bucket: str) -> list[Any]:
    return boto3.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", [])


class Refused(Exception):
    pass


@pytest.mark.parametrize("failing", ["upload_part", "complete_multipart_upload"])
def test_a_failing_last_part_or_complete_call_leaves_no_multipart_upload_open(
        aws: Buckets, monkeypatch: pytest.MonkeyPatch, failing: str) -> None:
    # Given a raw file larger than one part, whose last part (or the complete call) S3 refuses
    s3 = clients.s3()
    real = getattr(s3, failing)
    calls = {"n": 0}

    def refuse_at_the_end(**kwargs: Any) -> Any:
        calls["n"] += 1
        if failing == "complete_multipart_upload" or calls["n"] == 2:
            raise Refused(failing)
        return real(**kwargs)

    monkeypatch.setattr(s3, failing, refuse_at_the_end)
    sink = S3RawSink(aws.raw, plan_for(ParticleExport(name="particle-demo", secret_name="s")))
    # When the download streams into it
    with pytest.raises(Refused), sink.open(dataset="particle_data_operations", name="r.csv",
                                           content_type="text/csv") as out:
        out.write(b"x" * PART)
        out.write(b"y" * 100)
    # Then nothing is visible and no upload is left open (its parts would be billed for ever)
    assert open_uploads(aws.raw) == [] and sink.objects == []
    assert boto3.client("s3").list_objects_v2(Bucket=aws.raw).get("KeyCount") == 0


def test_a_vendor_stream_that_breaks_half_way_leaves_nothing(aws: Buckets) -> None:
    sink = S3RawSink(aws.raw, plan_for(ParticleExport(name="particle-demo", secret_name="s")))
    with pytest.raises(Refused), sink.open(dataset="d", name="r.csv", content_type="text/csv") as out:
        out.write(b"x" * (PART + 1))
        raise Refused("connection reset")
    assert open_uploads(aws.raw) == [] and sink.objects == []


def test_each_whole_object_gets_a_manifest_beside_it_saying_what_it_answers(aws: Buckets) -> None:
    # Given a Senet run's sink, told the vendor report, the job and when it downloads
    export = SenetExport(name="senet-fleet", secret_name="report-exporter/senet-fleet", application_euis=(
        "00250C0000010001",))
    plan = plan_for(export, "2026-10")
    at = plan.started_at.replace(hour=7)
    sink = S3RawSink(aws.raw, plan, report_id="availability", job="job-1", now=at)
    # When a details file is written whole
    with sink.open(dataset="senet_device_month", name="run-details-00250C0000010001.csv", content_type="text/csv",
                   records=lambda: 2, params={"application_eui": "00250C0000010001"}) as out:
        out.write(b"dev_eui\na\nb\n")
    # Then a manifest sits beside it: what was asked, what this object answers, what was kept, when
    (raw,) = sink.objects
    stored = boto3.client("s3").get_object(Bucket=aws.raw, Key=f"{raw.key}.manifest.json")
    assert stored["ContentType"] == "application/json"
    manifest = RawManifest.from_json(stored["Body"].read())
    assert manifest == read_manifest(aws.raw, raw.key)
    assert (manifest.vendor, manifest.export, manifest.dataset, manifest.period) == (
        "senet", "senet-fleet", "senet_device_month", "2026-10")
    assert manifest.window == plan.window and manifest.request == export
    assert manifest.params == {"application_eui": "00250C0000010001"}
    assert manifest.raw_object == raw and raw.records == 2
    assert (manifest.report_id, manifest.job, manifest.execution_id, manifest.exported_at) == (
        "availability", "job-1", plan.execution_id, at)
    # And it names the secret, never holds one
    assert manifest.request.secret_name == "report-exporter/senet-fleet"


def test_a_raw_object_without_a_manifest_is_refused_by_name(aws: Buckets) -> None:
    boto3.client("s3").put_object(Bucket=aws.raw, Key="raw/particle/p/2026-10/r.csv", Body=b"x")
    with pytest.raises(InvalidReportError, match=r"^raw/particle/p/2026-10/r\.csv: no manifest beside it"):
        read_manifest(aws.raw, "raw/particle/p/2026-10/r.csv")


# Resumable objects: what a failed attempt keeps for the next one.

class MemoryStore:
    """The ledger's cursor, in a dict (its conditions are tested in test_ledger.py)."""

    def __init__(self) -> None:
        self.cursor: dict[str, Any] | None = None
        self.saves = 0

    def load(self) -> dict[str, Any] | None:
        return self.cursor

    def save(self, cursor: dict[str, Any]) -> None:
        self.cursor = cursor
        self.saves += 1

    def clear(self) -> None:
        self.cursor = None


PLAN = plan_for(ParticleExport(name="particle-demo", secret_name="s"))
BODY = bytes(range(256)) * (PART * 2 // 256) + b"tail,\n"


class Lines:
    """Counts line ends (a stand-in for the CSV record counter)."""

    def __init__(self) -> None:
        self.n = 0

    def feed(self, data: bytes) -> None:
        self.n += data.count(b"\n")

    def records(self) -> int:
        return self.n


def write_until(sink: S3RawSink, upto: int, error: Exception) -> None:
    """Write BODY in 1 MiB chunks with a checkpoint after each, failing with ``error`` at byte ``upto``."""
    with pytest.raises(type(error)), sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv",
                                                         recount=Lines) as out:
        assert out.resumed is None
        for at in range(0, upto, 1 << 20):
            out.write(BODY[at:at + (1 << 20)])
            out.checkpoint({"offset": at + (1 << 20)})
        raise error


def test_a_transient_failure_keeps_the_parts_and_the_next_attempt_resumes_after_them(aws: Buckets) -> None:
    from report_exporter.errors import VendorUnavailableError

    # Given an attempt that kept one 8 MiB part, then lost its vendor at 12 MiB
    store = MemoryStore()
    write_until(S3RawSink(aws.raw, PLAN, resume=store), 12 << 20, VendorUnavailableError("reset"))
    assert store.cursor is not None and store.cursor["bytes"] == PART and store.cursor["state"] == {"offset": PART}
    assert len(open_uploads(aws.raw)) == 1
    # When the next attempt opens the same object
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv", recount=Lines) as out:
        # Then it starts after the kept part, with the cursor kept with it
        assert out.resumed == {"offset": PART} and out.tell() == PART
        for at in range(PART, len(BODY), 1 << 20):
            out.write(BODY[at:at + (1 << 20)])
            out.checkpoint({"offset": at + (1 << 20)})
    # And the object is whole, its sha256 and records exact (read back once), and no upload is left open
    (raw,) = sink.objects
    stored = boto3.client("s3").get_object(Bucket=aws.raw, Key=raw.key)["Body"].read()
    assert stored == BODY
    assert (raw.bytes, raw.sha256, raw.records) == (len(BODY), hashlib.sha256(BODY).hexdigest(), BODY.count(b"\n"))
    assert open_uploads(aws.raw) == []
    # And its manifest, written once the object was whole, carries the read-back sha256 and count
    manifest = read_manifest(aws.raw, raw.key)
    assert (manifest.bytes, manifest.sha256, manifest.records) == (raw.bytes, raw.sha256, raw.records)


def test_a_failure_that_is_not_transient_drops_the_parts_and_the_cursor(aws: Buckets) -> None:
    from report_exporter.errors import VendorContractError

    store = MemoryStore()
    write_until(S3RawSink(aws.raw, PLAN, resume=store), 12 << 20, VendorContractError("not a CSV"))
    assert store.cursor is None and open_uploads(aws.raw) == []


def test_a_cursor_whose_upload_is_gone_starts_over(aws: Buckets) -> None:
    from report_exporter.errors import VendorUnavailableError

    # Given a kept part whose upload was aborted since (the bucket's lifecycle rule, a completed upload)
    store = MemoryStore()
    write_until(S3RawSink(aws.raw, PLAN, resume=store), 9 << 20, VendorUnavailableError("reset"))
    assert store.cursor is not None
    boto3.client("s3").abort_multipart_upload(Bucket=aws.raw, Key=store.cursor["key"],
                                              UploadId=store.cursor["upload_id"])
    # When the next attempt opens the object / Then it starts from the first byte, the stale cursor dropped
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv") as out:
        assert out.resumed is None and out.tell() == 0 and store.cursor is None
        out.write(b"a,b\n")
    assert sink.objects[0].sha256 == hashlib.sha256(b"a,b\n").hexdigest()


def test_restart_drops_what_was_kept(aws: Buckets) -> None:
    from report_exporter.errors import VendorUnavailableError

    store = MemoryStore()
    write_until(S3RawSink(aws.raw, PLAN, resume=store), 9 << 20, VendorUnavailableError("reset"))
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv") as out:
        assert out.tell() == PART
        # (the vendor sent the whole file again: no range support)
        out.restart()
        assert out.tell() == 0 and out.resumed is None and store.cursor is None
        out.write(b"x" * 10)
    assert open_uploads(aws.raw) == []
    assert sink.objects[0].bytes == 10 and sink.objects[0].sha256 == hashlib.sha256(b"x" * 10).hexdigest()


# The uploader thread: parts go up while the download goes on, in order, and only their own cursors are saved.

class Gated:
    """Wraps the S3 client's ``upload_part``: logs each call and holds part ``hold`` until :meth:`release`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, log: list[tuple[str, int]], *, hold: int = 0,
                 refuse: int = 0) -> None:
        s3 = clients.s3()
        self._real = s3.upload_part
        self._log = log
        self._hold, self._refuse = hold, refuse
        self.started = threading.Event()
        self._gate = threading.Event()
        self.threads: set[str] = set()
        monkeypatch.setattr(s3, "upload_part", self)

    def release(self) -> None:
        self._gate.set()

    def __call__(self, **kwargs: Any) -> Any:
        number = int(kwargs["PartNumber"])
        self.threads.add(threading.current_thread().name)
        if number == self._hold:
            self.started.set()
            # (a bound so that a broken writer fails the test instead of hanging it; never reached when it works)
            assert self._gate.wait(timeout=60), "part held for ever: the writer waited for its own upload"
        if number == self._refuse:
            raise Refused(f"part {number}")
        answer = self._real(**kwargs)
        self._log.append(("uploaded", number))
        return answer


class LoggedStore(MemoryStore):
    def __init__(self, log: list[tuple[str, int]]) -> None:
        super().__init__()
        self._log = log

    def save(self, cursor: dict[str, Any]) -> None:
        self._log.append(("saved", len(cursor["etags"])))
        super().save(cursor)


def chunks(upto: int) -> Iterator[tuple[int, bytes]]:
    for at in range(0, upto, 1 << 20):
        yield at + (1 << 20), BODY[at:at + (1 << 20)]


def test_the_download_goes_on_while_a_part_uploads_and_its_cursor_waits_for_it(
        aws: Buckets, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an S3 that holds on to the first part until told
    log: list[tuple[str, int]] = []
    store = LoggedStore(log)
    gate = Gated(monkeypatch, log, hold=1)
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv", recount=Lines) as out:
        # When the download fills the first part and goes on
        for offset, chunk in chunks(PART + (3 << 20)):
            out.write(chunk)
            out.checkpoint({"offset": offset})
        # Then it wrote 3 MiB past the part while the part was still on its way (on another thread)...
        assert gate.started.wait(timeout=60) and out.tell() == PART + (3 << 20)
        # ...and no cursor was saved: the part it names is not uploaded yet
        assert store.saves == 0 and log == []
        gate.release()
        for offset, chunk in chunks(len(BODY)):
            if offset > PART + (3 << 20):
                out.write(chunk)
                out.checkpoint({"offset": offset})
    # And the parts went up in order, each cursor saved after its part, and the object is whole
    assert gate.threads == {"s3-part-uploader"}
    assert [n for what, n in log if what == "uploaded"] == [1, 2, 3]
    assert [n for what, n in log if what == "saved"] == [1, 2]
    assert all(log.index(("uploaded", n)) < log.index(("saved", n)) for n in (1, 2))
    stored = boto3.client("s3").get_object(Bucket=aws.raw, Key=sink.objects[0].key)["Body"].read()
    assert stored == BODY and sink.objects[0].sha256 == hashlib.sha256(BODY).hexdigest()


class SlowStore(MemoryStore):
    """A ledger whose saves are slow: each waits (a bounded while) for the next part's upload to start, so a
    writer that sends the next part before it has saved the cursors ahead of it is caught doing so."""

    def __init__(self) -> None:
        super().__init__()
        self.sending = threading.Event()

    def save(self, cursor: dict[str, Any]) -> None:
        self.sending.wait(timeout=0.5)
        super().save(cursor)


def test_a_part_goes_up_only_once_the_cursors_of_the_parts_before_it_are_saved(
        aws: Buckets, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a ledger that is slow to save, and an S3 that notes what the ledger holds when each part starts
    store = SlowStore()
    s3 = clients.s3()
    real = s3.upload_part
    held: dict[int, int] = {}

    def upload_part(**kwargs: Any) -> Any:
        held[int(kwargs["PartNumber"])] = len(store.cursor["etags"]) if store.cursor else 0
        store.sending.set()
        return real(**kwargs)

    monkeypatch.setattr(s3, "upload_part", upload_part)
    # When a resumable download streams three parts' worth
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv", recount=Lines) as out:
        for offset, chunk in chunks(len(BODY)):
            out.write(chunk)
            out.checkpoint({"offset": offset})
    # Then each part started with the cursor of the part before it saved: a process that dies sending part n
    # keeps parts 1..n-1 for the retry
    assert held == {1: 0, 2: 1, 3: 2}
    stored = boto3.client("s3").get_object(Bucket=aws.raw, Key=sink.objects[0].key)["Body"].read()
    assert stored == BODY


def test_a_part_in_flight_when_the_vendor_fails_is_kept_with_its_cursor(
        aws: Buckets, monkeypatch: pytest.MonkeyPatch) -> None:
    from report_exporter.errors import VendorUnavailableError

    # Given the first part still on its way when the vendor's stream breaks at 12 MiB
    log: list[tuple[str, int]] = []
    store = LoggedStore(log)
    gate = Gated(monkeypatch, log, hold=1)
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with pytest.raises(VendorUnavailableError), sink.open_resumable(dataset="d", name="r.csv",
                                                                    content_type="text/csv") as out:
        for offset, chunk in chunks(12 << 20):
            out.write(chunk)
            out.checkpoint({"offset": offset})
        assert store.saves == 0
        gate.release()
        raise VendorUnavailableError("reset")
    # Then the attempt waited for the part and kept it, with its cursor, for the next attempt
    assert log == [("uploaded", 1), ("saved", 1)]
    assert store.cursor is not None and store.cursor["bytes"] == PART and store.cursor["state"] == {"offset": PART}
    assert len(open_uploads(aws.raw)) == 1


@pytest.mark.parametrize("resumable", [False, True], ids=["open", "open_resumable"])
def test_an_upload_error_on_the_uploader_thread_is_raised_by_the_download_and_aborts(
        aws: Buckets, monkeypatch: pytest.MonkeyPatch, resumable: bool) -> None:
    # Given an S3 that refuses the second part
    log: list[tuple[str, int]] = []
    store = LoggedStore(log)
    gate = Gated(monkeypatch, log, refuse=2)
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    opened = (sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv") if resumable
              else sink.open(dataset="d", name="r.csv", content_type="text/csv"))
    # When the download streams three parts' worth into it
    with pytest.raises(Refused, match="part 2"), opened as out:
        for offset, chunk in chunks(len(BODY)):
            out.write(chunk)
            if resumable:
                out.checkpoint({"offset": offset})  # type: ignore[attr-defined]
    # Then the refusal reached the download's thread, no later part was sent, the cursor of part 1 was saved
    # and then dropped with the upload (not a transient error): nothing is left open or visible
    assert gate.threads == {"s3-part-uploader"}
    assert [entry for entry in log if entry[0] == "uploaded"] == [("uploaded", 1)]
    assert log == ([("uploaded", 1), ("saved", 1)] if resumable else [("uploaded", 1)])
    assert store.cursor is None and open_uploads(aws.raw) == [] and sink.objects == []


def test_a_plain_object_of_several_parts_is_whole_and_hashed_in_order(aws: Buckets) -> None:
    # Given a non-resumable raw file of two parts and a tail, written in odd-sized chunks
    sink = S3RawSink(aws.raw, PLAN)
    with sink.open(dataset="d", name="r.csv", content_type="text/csv") as out:
        for at in range(0, len(BODY), 1_000_003):
            out.write(BODY[at:at + 1_000_003])
    # Then the object is the bytes in order, and its sha256 and size are theirs
    (raw,) = sink.objects
    stored = boto3.client("s3").get_object(Bucket=aws.raw, Key=raw.key)["Body"].read()
    assert stored == BODY
    assert (raw.bytes, raw.sha256) == (len(BODY), hashlib.sha256(BODY).hexdigest())


@pytest.mark.parametrize("end", ["commit", "abort"])
def test_an_upload_that_ended_takes_no_more_bytes(aws: Buckets, end: str) -> None:
    # Given an upload with a part sent, then committed or aborted
    writer = MultipartWriter(aws.raw, "k", content_type="text/csv", part_size=5 << 20)
    writer.write(b"x" * (5 << 20))
    getattr(writer, end)()
    # When something still writes to it (a Parquet writer closed late, say) / Then it is refused, nothing is
    # sent, and no upload is left open
    with pytest.raises(ValueError, match=r"^s3://test-raw/k: the upload was committed or aborted; nothing more is "
                                         r"written$"):
        writer.write(b"y" * (5 << 20))
    assert open_uploads(aws.raw) == []


def test_a_staged_parquet_file_goes_up_in_parts_of_s3s_smallest_size(aws: Buckets,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an S3 that notes the size of each part it is sent
    s3 = clients.s3()
    real = s3.upload_part
    sizes: list[int] = []

    def upload_part(**kwargs: Any) -> Any:
        sizes.append(len(kwargs["Body"]))
        return real(**kwargs)

    monkeypatch.setattr(s3, "upload_part", upload_part)
    # When WriteParquet's writer streams 12 MiB into a staging object, in 1 MiB writes
    data = bytes(range(256)) * (12 * (1 << 20) // 256)
    writer = S3CuratedStore(aws.curated).upload("curated/_staging/k.parquet", content_type="application/x-parquet")
    for at in range(0, len(data), 1 << 20):
        writer.write(data[at:at + (1 << 20)])
    writer.commit()
    # Then it held at most 5 MiB (S3's smallest part) before sending a part, not 8 MiB as a raw download does:
    # its memory is the same whether the file fits in one PUT or takes several parts
    assert sizes == [5 << 20, 5 << 20, 2 << 20]
    stored = boto3.client("s3").get_object(Bucket=aws.curated, Key="curated/_staging/k.parquet")["Body"].read()
    assert stored == data
