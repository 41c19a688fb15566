"""Objects on S3 (moto): what is stored and how (encrypted, typed), listings, ranged reads, publishing, manifests."""

from __future__ import annotations

import hashlib
import io
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from report_exporter.aws import clients, s3
from report_exporter.aws.s3 import CURATED_PART_SIZE, MultipartWriter, S3CuratedStore, S3RawSink
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import ParticleExport
from report_exporter.models.manifest import RawManifest
from report_exporter.models.payloads import RawObject
from tests.fakes import plan_for
from tests.integration.conftest import Buckets, keep_manifest

MIN_PART = 5 << 20
PLAN = plan_for(ParticleExport(name="particle-demo", secret_name="s"))


def s3_answers(operation: str, code: str, status: int) -> None:
    """S3 answers every ``operation`` call with error ``code`` (through botocore's own error path)."""

    def answer(**_: Any) -> tuple[Any, dict[str, Any]]:
        return (SimpleNamespace(status_code=status, headers={}),
                {"Error": {"Code": code, "Message": f"{code} (test)"}, "ResponseMetadata": {"HTTPStatusCode": status}})

    clients.s3().meta.events.register(f"before-call.s3.{operation}", answer)


def put(bucket: str, key: str, body: bytes = b"x", **extra: Any) -> None:
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=body, **extra)


def head(bucket: str, key: str) -> dict[str, Any]:
    answer: dict[str, Any] = boto3.client("s3").head_object(Bucket=bucket, Key=key)
    return answer


def keys(bucket: str) -> list[str]:
    return [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


def raw_object(key: str, body: bytes = b"a,b\n") -> RawObject:
    return RawObject(dataset="particle_data_operations", key=key, bytes=len(body),
                     sha256=hashlib.sha256(body).hexdigest(), content_type="text/csv")


# Writing

@pytest.mark.parametrize("size", [10, 2 * MIN_PART + 10], ids=["one PUT", "multipart"])
def test_an_uploaded_object_is_its_bytes_typed_and_encrypted_at_rest(aws: Buckets, size: int) -> None:
    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)
    writer = S3CuratedStore(aws.curated).upload("curated/k.parquet", content_type="application/vnd.apache.parquet")
    for at in range(0, len(body), 3 << 20):
        writer.write(body[at:at + (3 << 20)])
    assert keys(aws.curated) == [] and writer.closed is False  # nothing visible before the commit
    writer.commit()
    assert boto3.client("s3").get_object(Bucket=aws.curated, Key="curated/k.parquet")["Body"].read() == body
    meta = head(aws.curated, "curated/k.parquet")
    assert (meta["ContentType"], meta["ServerSideEncryption"]) == ("application/vnd.apache.parquet", "AES256")
    assert (writer.size, writer.sha256, writer.closed) == (len(body), hashlib.sha256(body).hexdigest(), True)


def test_an_aborted_upload_leaves_nothing(aws: Buckets) -> None:
    writer = MultipartWriter(aws.curated, "curated/k.parquet", content_type="application/octet-stream",
                             part_size=MIN_PART)
    writer.write(b"x" * (2 * MIN_PART))
    writer.abort()
    assert keys(aws.curated) == []
    assert boto3.client("s3").list_multipart_uploads(Bucket=aws.curated).get("Uploads", []) == []


def test_a_part_s3_refuses_fails_the_write_that_filled_it(aws: Buckets) -> None:
    # Given a curated upload (its parts are sent by the writes themselves) and an S3 that refuses parts
    writer = S3CuratedStore(aws.curated).upload("curated/k.parquet", content_type="application/vnd.apache.parquet")
    s3_answers("UploadPart", "AccessDenied", 403)
    writer.write(b"x" * (CURATED_PART_SIZE - 1))
    # When a write fills the first part / Then that write fails with S3's refusal (the Parquet writer sees it)
    with pytest.raises(ClientError) as raised:
        writer.write(b"x")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    writer.abort()
    assert boto3.client("s3").list_multipart_uploads(Bucket=aws.curated).get("Uploads", []) == []


def test_the_upload_is_a_write_only_stream_to_python_s_io_layers(aws: Buckets) -> None:
    # Given a text layer over an upload (how a writer of CSV text would use it)
    writer = MultipartWriter(aws.raw, "raw/t.csv", content_type="text/csv")
    text = io.TextIOWrapper(writer, encoding="utf-8", newline="")  # type: ignore[arg-type]
    # When text is written through it / Then it reaches the object
    text.write("a,b\r\n1,2\r\n")
    text.flush()
    # And the layer refuses to read it or to seek in it
    with pytest.raises(io.UnsupportedOperation):
        text.read()
    with pytest.raises(io.UnsupportedOperation):
        text.seek(0)
    text.detach()
    writer.commit()
    assert boto3.client("s3").get_object(Bucket=aws.raw, Key="raw/t.csv")["Body"].read() == b"a,b\r\n1,2\r\n"


def test_a_raw_object_and_its_manifest_are_typed_and_encrypted_at_rest(aws: Buckets) -> None:
    sink = S3RawSink(aws.raw, PLAN)
    with sink.open(dataset="d", name="r.csv", content_type="text/csv") as out:
        out.write(b"a,b\n")
    (obj,) = sink.objects
    assert keys(aws.raw) == [obj.key, f"{obj.key}.manifest.json"]
    for key, content_type in ((obj.key, "text/csv"), (f"{obj.key}.manifest.json", "application/json")):
        meta = head(aws.raw, key)
        assert (meta["ContentType"], meta["ServerSideEncryption"]) == (content_type, "AES256")


# Publishing a staged Parquet file

def test_publish_replaces_the_partition_s_object_with_the_staged_one_and_removes_the_staged_copy(aws: Buckets) -> None:
    # Given last run's partition object and this run's staged file
    store = S3CuratedStore(aws.curated)
    final = store.partition_key("particle_data_operations", "particle-demo", "2026-10")
    staged = store.staging_key("particle_data_operations", "particle-demo", "2026-10", "run-2")
    assert final == "curated/particle_data_operations/export=particle-demo/period=2026-10/data.parquet"
    assert staged == "curated/_staging/particle_data_operations/particle-demo/2026-10/run-2.parquet"
    put(aws.curated, final, b"old")
    put(aws.curated, staged, b"new", ContentType="application/vnd.apache.parquet", Metadata={"rows": "12"})
    # When it is published
    store.publish(staged, final)
    # Then the partition holds the new file, typed and described as staged, encrypted; the staged copy is gone
    assert keys(aws.curated) == [final]
    assert boto3.client("s3").get_object(Bucket=aws.curated, Key=final)["Body"].read() == b"new"
    meta = head(aws.curated, final)
    assert (meta["ContentType"], meta["Metadata"], meta["ServerSideEncryption"]) == (
        "application/vnd.apache.parquet", {"rows": "12"}, "AES256")


def test_delete_removes_one_object(aws: Buckets) -> None:
    put(aws.curated, "curated/_staging/a.parquet")
    put(aws.curated, "curated/_staging/b.parquet")
    S3CuratedStore(aws.curated).delete("curated/_staging/a.parquet")
    assert keys(aws.curated) == ["curated/_staging/b.parquet"]


# Reading

def test_the_tail_of_an_object_is_its_last_bytes(aws: Buckets) -> None:
    put(aws.curated, "curated/k.parquet", b"0123456789PAR1")
    store = S3CuratedStore(aws.curated)
    assert store.tail("curated/k.parquet", 4) == b"PAR1"
    assert store.tail("curated/k.parquet", 8) == b"6789PAR1"


def test_a_raw_object_is_read_as_a_stream_of_its_bytes(aws: Buckets) -> None:
    put(aws.raw, "raw/p/r.csv", b"a,b\n1,2\n")
    body = s3.S3RawStore(aws.raw).read("raw/p/r.csv")
    assert body.read(4) == b"a,b\n" and body.read() == b"1,2\n"


# Listings

def test_the_folders_right_under_a_prefix_are_listed_by_name(aws: Buckets) -> None:
    for key in ("raw/particle/p/2026-09/a.csv", "raw/particle/p/2026-10/a.csv", "raw/particle/p/2026-10/b.csv",
                "raw/particle/p/notes.txt", "raw/particle/q/2026-10/a.csv"):
        put(aws.raw, key)
    put(aws.curated, "raw/particle/p/2026-11/a.csv")  # another bucket
    assert s3.list_folders(aws.raw, "raw/particle/p/") == ["2026-09/", "2026-10/"]
    assert s3.list_folders(aws.raw, "raw/particle/") == ["p/", "q/"]
    assert s3.list_folders(aws.raw, "raw/here/") == []


def test_every_manifest_under_a_prefix_is_read_in_key_order(aws: Buckets) -> None:
    # Given a month's raw objects: two with manifests, one incomplete (no manifest), and another month's
    prefix = s3.raw_prefix("particle", "particle-demo", "2026-10")
    for name in ("b.csv", "a.csv", "c.csv"):
        put(aws.raw, f"{prefix}{name}", b"a,b\n")
    keep_manifest(aws.raw, PLAN, raw_object(f"{prefix}b.csv"))
    keep_manifest(aws.raw, PLAN, raw_object(f"{prefix}a.csv"), params={"page": "1"})
    september = plan_for(PLAN.export, "2026-09")
    keep_manifest(aws.raw, september, raw_object(s3.raw_key(september, "a.csv")))
    # When they are listed / Then each manifest is read whole, in key order, and only this month's
    found = s3.list_manifests(aws.raw, prefix)
    assert [m.key for m in found] == [f"{prefix}a.csv", f"{prefix}b.csv"]
    assert found[0] == RawManifest.describe(PLAN, raw_object(f"{prefix}a.csv"), params={"page": "1"})
    assert s3.list_manifests(aws.raw, s3.raw_prefix("here", "h", "2026-10")) == []


# Manifests that cannot be used, by name

def test_a_manifest_that_is_not_one_is_refused_naming_its_key(aws: Buckets) -> None:
    put(aws.raw, "raw/p/r.csv.manifest.json", b'{"format": 1}\n')
    with pytest.raises(InvalidReportError, match=r"^raw/p/r\.csv\.manifest\.json: not a raw-file manifest \(\d+ "
                                                 r"validation errors? for RawManifest\)$"):
        s3.read_manifest(aws.raw, "raw/p/r.csv")


def test_a_manifest_of_another_object_is_refused_naming_both(aws: Buckets) -> None:
    manifest = RawManifest.describe(PLAN, raw_object("raw/p/other.csv"))
    put(aws.raw, "raw/p/r.csv.manifest.json", manifest.to_json())
    with pytest.raises(InvalidReportError, match=r"^raw/p/r\.csv\.manifest\.json: the manifest describes "
                                                 r"raw/p/other\.csv, not raw/p/r\.csv$"):
        s3.S3RawStore(aws.raw).manifest("raw/p/r.csv")


def test_a_manifest_s3_answers_404_for_is_missing(aws: Buckets) -> None:
    s3_answers("GetObject", "404", 404)
    with pytest.raises(InvalidReportError, match=r"^raw/p/r\.csv: no manifest beside it \(raw/p/r\.csv\.manifest"
                                                 r"\.json\); nothing says what the file answers$"):
        s3.read_manifest(aws.raw, "raw/p/r.csv")


def test_a_manifest_s3_refuses_to_read_fails_with_s3_s_error(aws: Buckets) -> None:
    s3_answers("GetObject", "AccessDenied", 403)
    with pytest.raises(ClientError) as raised:
        s3.read_manifest(aws.raw, "raw/p/r.csv")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
