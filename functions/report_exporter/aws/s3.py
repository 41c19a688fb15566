"""S3 keys and streaming: multipart uploads in constant memory, streaming reads, atomic publish."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from report_exporter.aws import clients
from report_exporter.models.payloads import RawObject, RunPlan

PART_SIZE = 8 * 1024 * 1024
# Key prefixes: the Lambdas' S3 grants are limited to them (infra/exporter_infra/constructs/exporter_functions.py).
RAW_PREFIX = "raw/"
CURATED_PREFIX = "curated/"
STAGING_PREFIX = f"{CURATED_PREFIX}_staging/"


def raw_key(plan: RunPlan, name: str) -> str:
    """``raw/<vendor>/<export>/<period>/<name>``: immutable, one per vendor report or run."""
    return f"{RAW_PREFIX}{plan.export.vendor_name.value}/{plan.export.name}/{plan.period}/{name}"


def curated_key(dataset: str, export: str, period: str) -> str:
    """The one Parquet object of a partition: a rerun replaces it instead of adding rows."""
    return f"{CURATED_PREFIX}{dataset}/export={export}/period={period}/data.parquet"


def staging_key(dataset: str, export: str, period: str, run: str) -> str:
    """Where the Parquet file is written before it is published (outside every table's location)."""
    return f"{STAGING_PREFIX}{dataset}/{export}/{period}/{run}.parquet"


class MultipartWriter:
    """A write-only file object that streams into one S3 object, part by part.

    Memory stays at one part. Nothing is visible until :meth:`commit`; :meth:`abort` drops the
    uploaded parts. Also computes the sha256 and size of what was written.
    """

    def __init__(self, bucket: str, key: str, *, content_type: str, part_size: int = PART_SIZE) -> None:
        self.bucket = bucket
        self.key = key
        self.content_type = content_type
        self._part_size = part_size
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._upload_id: str | None = None
        self._hash = hashlib.sha256()
        self._size = 0
        self._done = False

    # File-object surface used by pyarrow and by adapters.
    @property
    def closed(self) -> bool:
        return self._done

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        return self._size

    def flush(self) -> None:
        return None

    def close(self) -> None:
        """pyarrow closes its sink when it finishes; publishing is :meth:`commit`'s job."""
        return None

    def write(self, data: bytes | bytearray | memoryview) -> int:
        if self._done:
            raise ValueError(f"s3://{self.bucket}/{self.key}: the upload was committed or aborted; nothing more is "
                             "written")
        view = memoryview(data).cast("B")
        self._hash.update(view)
        self._size += len(view)
        self._buffer += view
        if len(self._buffer) >= self._part_size:
            # Parts may be any size >= 5 MiB but the last: ship the whole buffer as it is (boto3 takes a
            # bytearray), no copy, no slicing; then start a new one rather than resize what was sent.
            self._upload_part(self._buffer)
            self._buffer = bytearray()
        return len(view)

    def _upload_part(self, body: bytes | bytearray) -> None:
        s3 = clients.s3()
        if self._upload_id is None:
            self._upload_id = s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type, ServerSideEncryption="AES256"
            )["UploadId"]
        number = len(self._parts) + 1
        etag = s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=body)[
            "ETag"
        ]
        self._parts.append({"PartNumber": number, "ETag": etag})

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    @property
    def size(self) -> int:
        return self._size

    def commit(self) -> None:
        """Make the object visible (one PUT when it fit in one part)."""
        s3 = clients.s3()
        if self._upload_id is None:
            s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=self._buffer,
                ContentType=self.content_type,
                ServerSideEncryption="AES256",
            )
        else:
            if self._buffer:
                self._upload_part(self._buffer)
            s3.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._buffer = bytearray()
        self._done = True

    def abort(self) -> None:
        if self._upload_id is not None and not self._done:
            clients.s3().abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
        self._buffer = bytearray()
        self._done = True


class S3RawSink:
    """The adapters' :class:`~report_exporter.adapters.base.RawSink`, backed by S3 multipart uploads."""

    def __init__(self, bucket: str, plan: RunPlan) -> None:
        self._bucket = bucket
        self._plan = plan
        self.objects: list[RawObject] = []

    @contextmanager
    def open(
        self, *, dataset: str, name: str, content_type: str, records: Callable[[], int | None] | None = None
    ) -> Iterator[MultipartWriter]:
        writer = MultipartWriter(self._bucket, raw_key(self._plan, name), content_type=content_type)
        try:
            yield writer
            writer.commit()
        except BaseException:
            # Whatever failed (the vendor stream, a part, the last part or the complete call), no
            # multipart upload is left open: its parts would be billed and the object never appear.
            writer.abort()
            raise
        self.objects.append(
            RawObject(
                dataset=dataset,
                key=writer.key,
                bytes=writer.size,
                sha256=writer.sha256,
                content_type=content_type,
                records=records() if records else None,
            )
        )


class S3RawStore:
    """The raw bucket as DownloadReport's raw store: one sink per run."""

    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def sink(self, plan: RunPlan) -> S3RawSink:
        return S3RawSink(self._bucket, plan)


def open_object(bucket: str, key: str) -> IO[bytes]:
    """A streaming, read-once body of an S3 object."""
    body: IO[bytes] = clients.s3().get_object(Bucket=bucket, Key=key)["Body"]
    return body


def object_tail(bucket: str, key: str, length: int) -> bytes:
    """The last ``length`` bytes of an object (a ranged GET)."""
    data: bytes = clients.s3().get_object(Bucket=bucket, Key=key, Range=f"bytes=-{length}")["Body"].read()
    return data


def publish(bucket: str, source_key: str, final_key: str) -> None:
    """Copy the staged object over the final key in one request, then remove the staged copy.

    One CopyObject (up to 5 GB, far above a month's Parquet file) rather than a managed transfer: no
    worker threads, and the final key changes atomically from the old file to the new one.
    """
    s3 = clients.s3()
    s3.copy_object(CopySource={"Bucket": bucket, "Key": source_key}, Bucket=bucket, Key=final_key,
                   ServerSideEncryption="AES256", MetadataDirective="COPY")
    s3.delete_object(Bucket=bucket, Key=source_key)


def delete(bucket: str, key: str) -> None:
    clients.s3().delete_object(Bucket=bucket, Key=key)
