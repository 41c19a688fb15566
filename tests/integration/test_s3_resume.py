"""Resumable raw objects on S3 (moto): which kept upload a next attempt continues, and what a failed one leaves.

test_raw_sink.py covers the main paths; here: the cursor the ledger keeps, the cursors a next attempt must not
continue, S3 answering that an upload is gone, restarts, and failures that must leave no upload open.
"""

from __future__ import annotations

import hashlib
import random
import threading
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from report_exporter.aws import clients
from report_exporter.aws.s3 import PART_SIZE, ResumableMultipartWriter, S3RawSink, S3RawStore, raw_key, read_manifest
from report_exporter.errors import ReportBusyError, VendorUnavailableError
from report_exporter.models.exports import ParticleExport
from tests.fakes import plan_for
from tests.integration.conftest import Buckets
from tests.integration.test_raw_sink import Lines

PART = PART_SIZE
MIN_PART = 5 << 20  # S3's smallest part but the last
MIB = 1 << 20
PLAN = plan_for(ParticleExport(name="particle-demo", secret_name="s"))
# Every part's bytes differ (an S3 part is checked by its ETag: parts in the wrong place do not pass)
BODY = random.Random(20261103).randbytes(2 * PART + 1000)
OTHER = random.Random(7).randbytes(2 * PART + 10)
BOUND = 60  # a bound so that a broken writer fails the test instead of hanging it; never reached when it works


class MemoryStore:
    """The ledger's cursor, in a dict (its conditions are tested in test_ledger.py)."""

    def __init__(self, *, refuse_saves: bool = False) -> None:
        self.cursor: dict[str, Any] | None = None
        self._refuse = refuse_saves

    def load(self) -> dict[str, Any] | None:
        return self.cursor

    def save(self, cursor: dict[str, Any]) -> None:
        if self._refuse:
            raise ReportBusyError("the download lease was taken over")
        self.cursor = cursor

    def clear(self) -> None:
        self.cursor = None


def open_uploads(bucket: str) -> list[Any]:
    return boto3.client("s3").list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def stored(bucket: str, key: str) -> bytes:
    data: bytes = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return data


def chunks(body: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
    """``body`` in 1 MiB chunks from ``start``, each with the offset after it (the adapter's cursor)."""
    end = len(body) if end is None else end
    for at in range(start, end, MIB):
        piece = body[at:min(at + MIB, end)]
        yield at + len(piece), piece


def stream(out: Any, body: bytes, start: int = 0, end: int | None = None,
           cursor: Callable[[int], dict[str, Any] | None] = lambda offset: {"offset": offset}) -> None:
    for offset, piece in chunks(body, start, end):
        out.write(piece)
        out.checkpoint(cursor(offset))


def keep_first_part(bucket: str, store: MemoryStore, *, dataset: str = "d", plan: Any = PLAN) -> None:
    """An attempt that uploaded one part of BODY, saved its cursor, then lost its vendor at 9 MiB."""
    sink = S3RawSink(bucket, plan, resume=store)
    with pytest.raises(VendorUnavailableError), sink.open_resumable(dataset=dataset, name="r.csv",
                                                                    content_type="text/csv") as out:
        stream(out, BODY, end=PART + MIB)
        raise VendorUnavailableError("reset")
    assert store.cursor is not None and store.cursor["bytes"] == PART


def s3_answers(operation: str, code: str, status: int) -> None:
    """S3 answers every ``operation`` call with error ``code`` (through botocore's own error path)."""

    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        return (SimpleNamespace(status_code=status, headers={}),
                {"Error": {"Code": code, "Message": f"{code} (test)"}, "ResponseMetadata": {"HTTPStatusCode": status}})

    clients.s3().meta.events.register(f"before-call.s3.{operation}", answer)


# What the ledger keeps

def test_the_saved_cursor_names_the_upload_its_parts_and_what_the_adapter_resumes_from(aws: Buckets) -> None:
    # Given an attempt that uploaded one part, then lost its vendor
    store = MemoryStore()
    keep_first_part(aws.raw, store)
    # Then the ledger's cursor names the open upload, its one part as S3 lists it, and the adapter's state
    (upload,) = open_uploads(aws.raw)
    (part,) = boto3.client("s3").list_parts(Bucket=aws.raw, Key=upload["Key"], UploadId=upload["UploadId"])["Parts"]
    assert store.cursor == {
        "key": raw_key(PLAN, "r.csv"), "upload_id": upload["UploadId"], "etags": [part["ETag"]], "bytes": PART,
        "dataset": "d", "content_type": "text/csv", "state": {"offset": PART},
    }


def test_the_raw_store_s_sink_keeps_the_cursor_and_names_the_report_and_job_in_the_manifest(aws: Buckets) -> None:
    # Given the raw store's sinks for two attempts of one job, sharing the ledger's cursor
    store = MemoryStore()
    raw = S3RawStore(aws.raw)
    first = raw.sink(PLAN, resume=store, report_id="rep-9", job="job-9", now=PLAN.started_at)
    with pytest.raises(VendorUnavailableError), first.open_resumable(dataset="d", name="r.csv",
                                                                     content_type="text/csv") as out:
        stream(out, BODY, end=PART + MIB)
        raise VendorUnavailableError("reset")
    assert store.cursor is not None
    # When the second attempt resumes and finishes
    at = PLAN.started_at.replace(hour=9)
    second = raw.sink(PLAN, resume=store, report_id="rep-9", job="job-9", now=at)
    with second.open_resumable(dataset="d", name="r.csv", content_type="text/csv") as out:
        assert out.tell() == PART
        stream(out, BODY, start=PART)
    # Then the object is whole and its manifest names the vendor report, the job and when it was downloaded
    (obj,) = second.objects
    assert stored(aws.raw, obj.key) == BODY
    manifest = raw.manifest(obj.key)
    assert (manifest.report_id, manifest.job, manifest.exported_at) == ("rep-9", "job-9", at)
    assert raw.read(obj.key).read() == BODY


# Cursors a next attempt must not continue

@pytest.mark.parametrize(("change", "why"), [
    ({"dataset": "another_dataset"}, "another dataset's upload"),
    ({"etags": []}, "no parts"),
    ({"state": None}, "no adapter state"),
    ({"state": ["offset", PART]}, "an adapter state that is not an object"),
])
def test_a_cursor_that_does_not_fit_the_object_is_dropped_and_the_object_starts_over(
        aws: Buckets, change: dict[str, Any], why: str) -> None:
    # Given a kept part whose cursor the ledger holds, altered
    store = MemoryStore()
    keep_first_part(aws.raw, store)
    assert store.cursor is not None
    store.cursor = {**store.cursor, **change}
    # When the next attempt opens the object / Then it starts from the first byte and the cursor is dropped
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv") as out:
        assert (out.resumed, out.tell(), store.cursor) == (None, 0, None), why
        stream(out, OTHER)
    assert stored(aws.raw, sink.objects[0].key) == OTHER


def test_another_dataset_does_not_continue_a_kept_upload_of_the_same_place(aws: Buckets) -> None:
    # Given a part kept by a download of dataset "d"
    store = MemoryStore()
    keep_first_part(aws.raw, store, dataset="d")
    # When a download of dataset "e" opens the same name / Then it starts over
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="e", name="r.csv", content_type="text/csv") as out:
        assert out.tell() == 0
        stream(out, OTHER)
    assert stored(aws.raw, raw_key(PLAN, "r.csv")) == OTHER


def test_a_cursor_of_another_month_is_not_continued_under_its_key(aws: Buckets) -> None:
    # Given a part kept by the September run (its upload still open)
    store = MemoryStore()
    september = plan_for(PLAN.export, "2026-09")
    keep_first_part(aws.raw, store, plan=september)
    # When the October run opens its object with that cursor
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv") as out:
        assert out.tell() == 0
        stream(out, OTHER)
    # Then October's object is written in October's place, from its first byte
    assert sink.objects[0].key == raw_key(PLAN, "r.csv") == "raw/particle/particle-demo/2026-10/r.csv"
    assert stored(aws.raw, sink.objects[0].key) == OTHER


def test_a_cursor_naming_an_upload_that_holds_no_parts_starts_over(aws: Buckets) -> None:
    # Given a cursor whose upload is open but holds none of its parts
    key = raw_key(PLAN, "r.csv")
    upload = boto3.client("s3").create_multipart_upload(Bucket=aws.raw, Key=key)["UploadId"]
    store = MemoryStore()
    store.cursor = {"key": key, "upload_id": upload, "etags": ['"0123456789abcdef0123456789abcdef"'], "bytes": PART,
                    "dataset": "d", "content_type": "text/csv", "state": {"offset": PART}}
    # When the next attempt opens the object / Then it starts over
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv") as out:
        assert (out.tell(), store.cursor) == (0, None)
        out.write(b"a,b\n")
    assert stored(aws.raw, key) == b"a,b\n"


@pytest.mark.parametrize(("code", "status"), [("NoSuchUpload", 404), ("NoSuchKey", 404), ("404", 404)])
def test_a_kept_upload_s3_says_is_gone_starts_over(aws: Buckets, code: str, status: int) -> None:
    # Given a kept part, and an S3 that answers the listing of its parts: gone
    store = MemoryStore()
    keep_first_part(aws.raw, store)
    s3_answers("ListParts", code, status)
    # When the next attempt opens the object / Then it starts over, the cursor dropped
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv") as out:
        assert (out.tell(), store.cursor) == (0, None)
        out.write(b"a,b\n")
    assert stored(aws.raw, sink.objects[0].key) == b"a,b\n"


def test_a_listing_s3_refuses_fails_the_attempt_and_keeps_the_cursor(aws: Buckets) -> None:
    # Given a kept part, and an S3 that refuses to list its parts (a permission, a throttle)
    store = MemoryStore()
    keep_first_part(aws.raw, store)
    kept = dict(store.cursor or {})
    s3_answers("ListParts", "AccessDenied", 403)
    # When the next attempt opens the object / Then S3's refusal is raised, and the kept part stays for later
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with pytest.raises(ClientError) as raised, sink.open_resumable(dataset="d", name="r.csv",
                                                                   content_type="text/csv"):
        pass
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert store.cursor == kept and len(open_uploads(aws.raw)) == 1


# Restarts (the vendor sends the whole file again)

def test_a_restart_after_resuming_writes_the_whole_object_again_in_new_parts(aws: Buckets) -> None:
    # Given a kept part, and a next attempt that resumes after it
    store = MemoryStore()
    keep_first_part(aws.raw, store)
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv", records=lambda: 3,
                             recount=Lines) as out:
        assert out.tell() == PART
        # When the vendor sends the whole (new) file again, in several parts
        out.restart()
        stream(out, OTHER)
    # Then the object is that file, byte for byte, hashed as it was written, with the adapter's count
    (obj,) = sink.objects
    assert stored(aws.raw, obj.key) == OTHER
    assert (obj.bytes, obj.sha256, obj.records) == (len(OTHER), hashlib.sha256(OTHER).hexdigest(), 3)
    assert open_uploads(aws.raw) == []


@pytest.mark.parametrize("gone", ["aborted", "answered 404"])
def test_a_restart_whose_kept_upload_is_already_gone_goes_on(aws: Buckets, gone: str) -> None:
    # Given a resumed object whose kept upload is gone by the time the vendor sends the whole file again
    store = MemoryStore()
    keep_first_part(aws.raw, store)
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv") as out:
        assert out.tell() == PART
        if gone == "aborted":
            (upload,) = open_uploads(aws.raw)
            boto3.client("s3").abort_multipart_upload(Bucket=aws.raw, Key=upload["Key"], UploadId=upload["UploadId"])
        else:
            s3_answers("AbortMultipartUpload", "404", 404)
        # When it restarts / Then it goes on from the first byte
        out.restart()
        out.write(b"a,b\n")
    assert stored(aws.raw, sink.objects[0].key) == b"a,b\n"


def test_a_restart_s3_refuses_to_abort_the_kept_upload_fails_the_attempt(aws: Buckets) -> None:
    store = MemoryStore()
    keep_first_part(aws.raw, store)
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    s3_answers("AbortMultipartUpload", "AccessDenied", 403)
    with pytest.raises(ClientError) as raised, sink.open_resumable(dataset="d", name="r.csv",
                                                                   content_type="text/csv") as out:
        out.restart()
        out.write(b"a,b\n")
    assert raised.value.response["Error"]["Code"] == "AccessDenied" and sink.objects == []


# Failures that must leave no upload open

@pytest.mark.parametrize("after_restart", [False, True], ids=["fresh", "after a restart"])
def test_parts_without_a_cursor_are_not_kept_by_a_transient_failure(aws: Buckets, after_restart: bool) -> None:
    # Given a download whose adapter has no cursor to resume from at the part it uploaded
    store = MemoryStore()
    if after_restart:
        keep_first_part(aws.raw, store)
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with pytest.raises(VendorUnavailableError), sink.open_resumable(dataset="d", name="r.csv",
                                                                    content_type="text/csv") as out:
        if after_restart:
            out.restart()
        stream(out, BODY, end=PART + MIB, cursor=lambda offset: None)
        # When the vendor fails (a transient error)
        raise VendorUnavailableError("reset")
    # Then nothing could continue the upload: it is aborted and no cursor is left
    assert open_uploads(aws.raw) == [] and store.cursor is None


def test_a_download_without_a_ledger_cursor_leaves_nothing_open_when_it_fails(aws: Buckets) -> None:
    sink = S3RawSink(aws.raw, PLAN)
    with pytest.raises(VendorUnavailableError), sink.open_resumable(dataset="d", name="r.csv",
                                                                    content_type="text/csv") as out:
        stream(out, BODY, end=PART + MIB)
        raise VendorUnavailableError("reset")
    assert open_uploads(aws.raw) == []
    # And one that does not fail is kept whole
    with S3RawSink(aws.raw, PLAN).open_resumable(dataset="d", name="r.csv", content_type="text/csv") as out:
        stream(out, BODY)
    assert stored(aws.raw, raw_key(PLAN, "r.csv")) == BODY


class HeldParts:
    """Wraps the S3 client's ``upload_part``: holds part ``hold`` until :meth:`release`; refuses part ``refuse``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, hold: int, refuse: int = 0) -> None:
        s3 = clients.s3()
        self._real = s3.upload_part
        self._hold, self._refuse = hold, refuse
        self.holding = threading.Event()
        self._gate = threading.Event()
        monkeypatch.setattr(s3, "upload_part", self)

    def release(self) -> None:
        self._gate.set()

    def __call__(self, **kwargs: Any) -> Any:
        number = int(kwargs["PartNumber"])
        if number == self._hold:
            self.holding.set()
            assert self._gate.wait(timeout=BOUND), "part held for ever"
        if number == self._refuse:
            raise ConnectionResetError(f"part {number}")
        return self._real(**kwargs)


@pytest.mark.parametrize(("refuse_part", "refuse_save"), [(True, False), (False, True)],
                         ids=["s3-refuses-the-part", "ledger-refuses-the-cursor"])
def test_a_failed_attempt_whose_part_or_cursor_is_refused_leaves_nothing_open(
        aws: Buckets, monkeypatch: pytest.MonkeyPatch, refuse_part: bool, refuse_save: bool) -> None:
    # Given the first part on its way when the vendor's stream breaks, and S3 refusing that part or a ledger
    # whose lease was taken over refusing the cursor
    store = MemoryStore(refuse_saves=refuse_save)
    held = HeldParts(monkeypatch, hold=1, refuse=1 if refuse_part else 0)
    sink = S3RawSink(aws.raw, PLAN, resume=store)
    with pytest.raises(VendorUnavailableError), sink.open_resumable(dataset="d", name="r.csv",
                                                                    content_type="text/csv") as out:
        stream(out, BODY, end=PART + MIB)
        assert held.holding.wait(timeout=BOUND)
        held.release()
        raise VendorUnavailableError("reset")
    # Then the vendor's error is what the attempt raises, and no part is left open or named by a cursor
    assert open_uploads(aws.raw) == [] and store.cursor is None


def test_a_fresh_resumable_object_is_hashed_as_written_and_counted_by_the_adapter(aws: Buckets) -> None:
    sink = S3RawSink(aws.raw, PLAN, resume=MemoryStore())
    with sink.open_resumable(dataset="d", name="r.csv", content_type="text/csv", records=lambda: 3,
                             recount=Lines) as out:
        stream(out, BODY)
    (obj,) = sink.objects
    assert (obj.bytes, obj.sha256, obj.records) == (len(BODY), hashlib.sha256(BODY).hexdigest(), 3)
    assert read_manifest(aws.raw, obj.key).records == 3


# The writer on its own (defaults: parts uploaded on the caller's thread)

def test_a_writer_on_its_own_uploads_each_part_at_its_checkpoint_and_saves_the_cursor_at_once(aws: Buckets) -> None:
    # Given a writer with the smallest part S3 allows, and no uploader thread
    store = MemoryStore()
    body = OTHER[:2 * MIN_PART + 10]
    writer = ResumableMultipartWriter(aws.raw, "raw/x/r.csv", content_type="text/csv", dataset="d", store=store,
                                      part_size=MIN_PART)
    # When a part's worth is written and checkpointed / Then the part is uploaded and its cursor saved, there
    writer.write(body[:MIN_PART])
    writer.checkpoint({"offset": MIN_PART})
    assert store.cursor is not None and (store.cursor["bytes"], len(store.cursor["etags"])) == (MIN_PART, 1)
    writer.write(body[MIN_PART:])
    writer.checkpoint({"offset": len(body)})
    assert store.cursor["bytes"] == 2 * MIN_PART + 10
    writer.commit()
    assert stored(aws.raw, "raw/x/r.csv") == body
    assert (writer.size, writer.sha256) == (len(body), hashlib.sha256(body).hexdigest())


def test_a_cursor_after_one_without_is_saved_once_both_parts_are_uploaded(
        aws: Buckets, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given two parts on their way (a window of two), the first without a cursor, the first held
    store = MemoryStore()
    held = HeldParts(monkeypatch, hold=1)
    writer = ResumableMultipartWriter(aws.raw, "raw/x/r.csv", content_type="text/csv", dataset="d", store=store,
                                      part_size=MIN_PART, window=2)
    writer.write(OTHER[:MIN_PART])
    writer.checkpoint(None)
    writer.write(OTHER[MIN_PART:2 * MIN_PART])
    writer.checkpoint({"offset": 2 * MIN_PART})
    assert held.holding.wait(timeout=BOUND) and store.cursor is None
    held.release()
    # When the attempt fails and settles
    writer.settle()
    # Then the second part's cursor is saved, naming both parts
    assert store.cursor is not None
    assert (store.cursor["bytes"], len(store.cursor["etags"]), store.cursor["state"]) == (
        2 * MIN_PART, 2, {"offset": 2 * MIN_PART})
    writer.abort()
    assert open_uploads(aws.raw) == [] and store.cursor is None
