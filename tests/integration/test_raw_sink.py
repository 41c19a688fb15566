"""The raw sink on S3 (moto): what stays behind when a download fails half-way."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from report_exporter.aws import clients
from report_exporter.aws.s3 import MultipartWriter, S3RawSink
from report_exporter.models.exports import ParticleExport
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


@pytest.mark.parametrize("end", ["commit", "abort"])
def test_an_upload_that_ended_takes_no_more_bytes(aws: Buckets, end: str) -> None:
    # Given an upload with a part sent, then committed or aborted
    writer = MultipartWriter(aws.raw, "k", content_type="text/csv", part_size=5 << 20)
    writer.write(b"x" * (5 << 20))
    getattr(writer, end)()
    # When something still writes to it (a Parquet writer closed late, say) / Then it is refused, nothing is
    # sent, and no upload is left open
    with pytest.raises(ValueError, match=r"^s3://test-raw/k: the upload was committed or aborted"):
        writer.write(b"y" * (5 << 20))
    assert open_uploads(aws.raw) == []
