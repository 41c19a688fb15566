"""The local runner's S3 keeps objects on disk and streams them: same answers as moto's, without whole copies.

Memory is measured with ``tracemalloc`` (the Python allocations of the block: every ``bytes`` moto makes of a
body is one), never with time. Each figure a test bounds was several times the bound before the change:
a GET read the whole object, a completed upload was joined in memory three times, each part's body stayed
alive (twice) until the cyclic collector ran.
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from report_exporter.local import moto_s3
from tests.fakes import fresh_python

MIB = 1 << 20
BUCKET = "stored-objects"
DATA = random.Random(7).randbytes(21 * MIB)  # two 8 MiB parts and a 5 MiB tail


@contextlib.contextmanager
def s3(patched: bool = True) -> Iterator[Any]:
    with mock_aws(), (moto_s3.installed() if patched else contextlib.nullcontext()):
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def upload(client: Any, key: str, data: bytes, **create: str) -> dict[str, Any]:
    upload_id = client.create_multipart_upload(Bucket=BUCKET, Key=key, **create)["UploadId"]
    parts = []
    extra = {"ChecksumAlgorithm": create["ChecksumAlgorithm"]} if "ChecksumAlgorithm" in create else {}
    for number, at in enumerate(range(0, len(data), 8 * MIB), start=1):
        sent = client.upload_part(Bucket=BUCKET, Key=key, UploadId=upload_id, PartNumber=number,
                                  Body=data[at:at + 8 * MIB], **extra)
        parts.append({"PartNumber": number, "ETag": sent["ETag"],
                      **{k: v for k, v in sent.items() if k.startswith("Checksum")}})
    done: dict[str, Any] = client.complete_multipart_upload(Bucket=BUCKET, Key=key, UploadId=upload_id,
                                                            MultipartUpload={"Parts": parts})
    return done


def peak_of(block: Callable[[], Any]) -> int:
    """The peak of the Python allocations ``block`` makes (bytes), with the cyclic collector off."""
    gc.collect()
    gc.disable()
    tracemalloc.start()
    try:
        block()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        gc.enable()


def answers(patched: bool, **create: str) -> tuple[Any, ...]:
    """What S3 answers to a multipart upload, a GET, ranged GETs and a HEAD of the object."""
    with s3(patched) as client:
        done = upload(client, "k", DATA, **create)
        got = client.get_object(Bucket=BUCKET, Key="k", ChecksumMode="ENABLED")
        head = client.head_object(Bucket=BUCKET, Key="k", ChecksumMode="ENABLED")

        def plain(answer: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in answer.items() if k.startswith(("Checksum", "ETag", "Content", "Accept"))}

        ranges = [(plain(r), r["Body"].read()) for r in (
            client.get_object(Bucket=BUCKET, Key="k", Range="bytes=100-9000000"),
            client.get_object(Bucket=BUCKET, Key="k", Range="bytes=-10"),
            client.get_object(Bucket=BUCKET, Key="k", Range=f"bytes={len(DATA) - 5}-"),
            client.get_object(Bucket=BUCKET, Key="k", Range=f"bytes=0-{len(DATA) * 2}"),
        )]
        return ({k: v for k, v in done.items() if k not in ("ResponseMetadata",)}, plain(got), got["Body"].read(),
                plain(head), ranges)


@pytest.mark.parametrize("create", [{}, {"ChecksumAlgorithm": "CRC32"}, {"ChecksumAlgorithm": "SHA256"},
                                    {"ChecksumAlgorithm": "CRC32", "ChecksumType": "FULL_OBJECT"}],
                         ids=["default", "crc32", "sha256", "crc32 full object"])
def test_a_stored_object_is_answered_as_moto_answers_it(create: dict[str, str]) -> None:
    ours, theirs = answers(True, **create), answers(False, **create)
    assert ours == theirs
    assert ours[2] == DATA
    assert [body for _, body in ours[4]] == [DATA[100:9000001], DATA[-10:], DATA[-5:], DATA]


def test_a_get_streams_the_object_from_its_file() -> None:
    with s3() as client:
        upload(client, "big", DATA)

        def read_in_chunks() -> None:
            body = client.get_object(Bucket=BUCKET, Key="big")["Body"]
            assert sum(len(chunk) for chunk in body.iter_chunks(MIB)) == len(DATA)

        def read_a_range() -> None:
            body = client.get_object(Bucket=BUCKET, Key="big", Range=f"bytes={MIB}-{2 * MIB - 1}")["Body"]
            assert body.read() == DATA[MIB:2 * MIB]

        # Then reading 21 MiB in 1 MiB chunks holds a few chunks at a time, not the object (moto: 21 MiB and more)
        assert peak_of(read_in_chunks) < 4 * MIB
        # And a ranged GET of 1 MiB reads that MiB only
        assert peak_of(read_a_range) < 3 * MIB


def test_completing_an_upload_copies_its_parts_file_to_file() -> None:
    with s3() as client:
        upload_id = client.create_multipart_upload(Bucket=BUCKET, Key="k")["UploadId"]
        parts = [{"PartNumber": n, "ETag": client.upload_part(Bucket=BUCKET, Key="k", UploadId=upload_id,
                                                              PartNumber=n, Body=DATA[at:at + 8 * MIB])["ETag"]}
                 for n, at in enumerate(range(0, len(DATA), 8 * MIB), start=1)]

        def complete() -> None:
            client.complete_multipart_upload(Bucket=BUCKET, Key="k", UploadId=upload_id,
                                             MultipartUpload={"Parts": parts})

        # moto joined the 21 MiB in a bytearray, copied it to bytes and once more for its checksum (~63 MiB)
        assert peak_of(complete) < 4 * MIB
        assert client.get_object(Bucket=BUCKET, Key="k")["Body"].read() == DATA


def test_a_part_body_is_freed_once_the_part_is_stored() -> None:
    with s3() as client:
        upload_id = client.create_multipart_upload(Bucket=BUCKET, Key="k")["UploadId"]
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            for number in range(1, 4):
                client.upload_part(Bucket=BUCKET, Key="k", UploadId=upload_id, PartNumber=number,
                                   Body=bytearray(8 * MIB))
            # Then with the collector off nothing of the three 8 MiB bodies is still held (moto held 16 MiB each)
            assert tracemalloc.get_traced_memory()[0] < 2 * MIB
        finally:
            tracemalloc.stop()
            gc.enable()


def test_an_object_replaced_or_deleted_while_it_is_read_is_read_as_it_was() -> None:
    with s3() as client:
        upload(client, "k", DATA)
        body = client.get_object(Bucket=BUCKET, Key="k")["Body"]
        first = body.read(MIB)
        client.put_object(Bucket=BUCKET, Key="k", Body=b"replaced")
        client.delete_object(Bucket=BUCKET, Key="k")
        assert first + body.read() == DATA


def test_an_invalid_part_list_is_refused_as_moto_refuses_it() -> None:
    from botocore.exceptions import ClientError

    with s3() as client:
        upload_id = client.create_multipart_upload(Bucket=BUCKET, Key="k")["UploadId"]
        small = client.upload_part(Bucket=BUCKET, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x")["ETag"]
        last = client.upload_part(Bucket=BUCKET, Key="k", UploadId=upload_id, PartNumber=2, Body=b"y")["ETag"]
        cases = {"InvalidPart": [{"PartNumber": 1, "ETag": '"0123"'}],
                 "EntityTooSmall": [{"PartNumber": 1, "ETag": small}, {"PartNumber": 2, "ETag": last}]}
        for code, parts in cases.items():
            with pytest.raises(ClientError) as refused:
                client.complete_multipart_upload(Bucket=BUCKET, Key="k", UploadId=upload_id,
                                                 MultipartUpload={"Parts": parts})
            assert refused.value.response["Error"]["Code"] == code


def test_the_hooks_are_removed_afterwards() -> None:
    from moto.core import botocore_stubber
    from moto.s3.models import FakeKey, FakeMultipart
    from moto.s3.responses import S3Response

    def patched() -> list[Any]:
        return [FakeKey.value, S3Response.get_object, FakeMultipart.complete, botocore_stubber.MockRawResponse,
                botocore_stubber.normalize_request, botocore_stubber.BotocoreStubber.process_request]

    before = patched()
    with moto_s3.installed():
        assert all(a is not b for a, b in zip(patched(), before, strict=True))
    assert patched() == before


def test_a_stored_view_is_sliced_as_bytes_are() -> None:
    path = Path(os.devnull)
    with path.open("rb") as null:
        view = moto_s3.StoredBytes(moto_s3._Descriptor(null.fileno()), 10, 30)
    assert len(view) == 20 and bool(view)
    for part in (slice(5, 8), slice(-3, None), slice(None, 100), slice(15, 5)):
        sliced = view[part]
        assert len(sliced) == len(bytes(20)[part])
    with pytest.raises(ValueError, match="step"):
        view[::2]
    with pytest.raises(TypeError, match="sliced"):
        view[3]  # type: ignore[call-overload]


def test_ec2s_instance_type_offerings_are_not_loaded_and_its_types_are() -> None:
    # In a fresh interpreter (this one may have imported moto's EC2 already)
    code = (
        "from report_exporter.local import moto_s3\n"
        "moto_s3.load_without_instance_offerings()\n"
        "from moto.ec2.models import instance_types as t\n"
        "offered = sum(len(v) for r in t.INSTANCE_TYPE_OFFERINGS.values() for v in r.values())\n"
        "print(len(t.INSTANCE_TYPES) > 100, offered)\n"
    )
    done = fresh_python(code, timeout=300)
    assert (done.returncode, done.stdout) == (0, "True 0\n"), done.stderr
