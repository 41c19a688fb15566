"""moto's S3, kept on disk and streamed: what the local runner changes in it so that a run's memory stays flat.

moto keeps each object's bytes in a temporary file once they pass a few MiB, but three of its paths still
read whole objects into memory, which a run of a 100 MB report paid several times over (``bench/README.md``,
"``run`` peak"):

* ``GetObject`` read the whole object into one ``bytes``, ranged or not, for as long as the reader streamed
  it (WriteParquet reads the raw report for seconds; each of a mirror's ranged GETs read it all again). Here a
  GET of a stored object of :data:`STREAMED_FROM` bytes or more answers with a view of its file
  (:class:`StoredBytes`): moto's range handling slices the view, and botocore reads it in chunks
  (:class:`StoredRaw`), each ``read`` a ``pread`` of its own, from a duplicate of the file's descriptor (so
  an object replaced or deleted meanwhile is still read as it was, as S3 does).
* ``CompleteMultipartUpload`` joined every part into a ``bytearray``, copied it into ``bytes``, and for the
  default full-object checksum copied it once more. Here the parts are checked exactly as moto checks them,
  the checksum is computed part after part, and the parts are copied file to file into the new object's
  file (:class:`Parts`, which the object's ``value`` setter takes as its buffer). Checksums moto computes in
  some other way (a full-object CRC32C, say) are left to moto.
* Each request moto handles is a werkzeug ``Request`` whose environ points back at it: a reference cycle
  that kept every 8 MiB ``UploadPart`` body alive twice (the request's stream and its cached data) until the
  cyclic collector ran, ten parts at a time. The link is cut once moto has answered, so a body is freed as
  soon as the request is done with.
* moto's Step Functions interpreter imports its Batch integration, which imports EC2's instance-type
  offerings for every region: 45 MiB of Python objects that the runner never reads (it has no EC2). They
  load empty here; the instance types themselves are kept.

Each place is a :class:`~report_exporter.local.moto_hooks.Seam` checked against the installed moto before
anything is patched, like the runner's other hooks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import importlib
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import IO, Any
from unittest import mock

STREAMED_FROM = 8 << 20
"""Objects at least this large are answered from their file (smaller ones as moto answers them)."""
CHUNK = 1 << 20
_OFFERINGS = "instance_type_offerings"


class _Descriptor:
    """A file descriptor of its own (``os.dup``), closed when the last view that reads it is gone."""

    def __init__(self, fd: int) -> None:
        self.fd = os.dup(fd)

    def __del__(self) -> None:
        os.close(self.fd)


class StoredBytes:
    """Bytes ``start``..``stop`` of a stored object's file, read only when asked for.

    What moto's GET path does with an object's value: its length, its truth, a slice of it (a range).
    """

    def __init__(self, descriptor: _Descriptor, start: int, stop: int) -> None:
        self._descriptor = descriptor
        self.start = start
        self.stop = stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, item: slice) -> StoredBytes:
        if not isinstance(item, slice):
            raise TypeError("a stored object is only sliced (a range), never indexed")
        start, stop, step = item.indices(len(self))
        if step != 1:
            raise ValueError("a stored object is sliced with a step of 1")
        return StoredBytes(self._descriptor, self.start + start, self.start + max(start, stop))

    def pread(self, offset: int, size: int) -> bytes:
        """Up to ``size`` bytes from ``offset`` (within this view)."""
        size = max(0, min(size, len(self) - offset))
        chunks: list[bytes] = []
        while size:
            chunk = os.pread(self._descriptor.fd, size, self.start + offset)
            if not chunk:
                raise OSError(f"stored object file ended {size} bytes early")
            chunks.append(chunk)
            offset += len(chunk)
            size -= len(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class StoredRaw:
    """The raw HTTP body botocore reads a GET's :class:`StoredBytes` from (moto's ``MockRawResponse`` API)."""

    def __init__(self, stored: StoredBytes) -> None:
        self._stored = stored
        self._at = 0

    def readable(self) -> bool:
        return True

    def read(self, amt: int | None = None) -> bytes:
        left = len(self._stored) - self._at
        data = self._stored.pread(self._at, left if amt is None or amt < 0 else min(amt, left))
        self._at += len(data)
        return data

    def stream(self, **_: Any) -> Iterator[bytes]:
        while chunk := self.read(CHUNK):
            yield chunk

    def close(self) -> None:
        self._at = len(self._stored)


class Parts:
    """A completed multipart upload's bytes, its parts copied file to file, in order: the new object's value
    (its ``value`` setter takes the file as the object's buffer; moto disposes of the parts right after)."""

    def __init__(self, buffer: IO[bytes], size: int) -> None:
        self.buffer = buffer
        self.size = size

    def __len__(self) -> int:
        return self.size


def _checksum(algorithm: str, kind: str) -> Callable[[Iterator[bytes]], bytes] | None:
    """The full-object checksum moto computes for ``algorithm`` (raw digest), fed chunk by chunk; None when
    moto computes it in some other way (the upload is then completed by moto's own code)."""
    from moto.core.compat import HAS_CRT  # what moto.s3.utils decides by

    if kind != "FULL_OBJECT":
        return None
    if algorithm == "CRC64NVME" and HAS_CRT:
        checksums = importlib.import_module("awscrt.checksums")

        def crc64(chunks: Iterator[bytes]) -> bytes:
            value = 0
            for chunk in chunks:
                value = checksums.crc64nvme(chunk, value)
            return int(value).to_bytes(8, "big")

        return crc64
    if algorithm in ("CRC32", "CRC64NVME"):  # moto's CRC64NVME without awscrt is a CRC32

        def crc32(chunks: Iterator[bytes]) -> bytes:
            value = 0
            for chunk in chunks:
                value = binascii.crc32(chunk, value)
            return value.to_bytes(4, "big")

        return crc32
    return None


def _chunks(key: Any) -> Iterator[bytes]:
    """A stored object's (or part's) bytes in chunks, from its buffer."""
    with key.lock:
        buffer = key._value_buffer
        buffer.seek(0)
        while chunk := buffer.read(CHUNK):
            yield chunk


@contextmanager
def installed() -> Iterator[None]:
    """Patch moto's S3 for the duration of the block (see the module's docstring)."""
    from moto.core import botocore_stubber
    from moto.core.request import normalize_request as original_normalize
    from moto.s3.exceptions import EntityTooSmall, InvalidPart, MalformedXML
    from moto.s3.models import FakeKey, FakeMultipart, MultipartChecksumBuilder
    from moto.s3.responses import S3Response
    from moto.s3.utils import compute_checksum
    from moto.settings import S3_UPLOAD_PART_MIN_SIZE

    local = threading.local()
    value: property = vars(FakeKey)["value"]
    read_value: Callable[[Any], bytes] = value.fget  # type: ignore[assignment]
    write_value: Callable[[Any, Any], None] = value.fset  # type: ignore[assignment]
    original_get_object = S3Response.get_object
    original_complete = FakeMultipart.complete
    original_raw = botocore_stubber.MockRawResponse
    original_process = botocore_stubber.BotocoreStubber.process_request

    def get_value(key: Any) -> Any:
        if getattr(local, "streaming", False) and key.contentsize >= STREAMED_FROM:
            with key.lock:
                buffer = key._value_buffer
                buffer.flush()
                return StoredBytes(_Descriptor(buffer.fileno()), 0, key.contentsize)
        return read_value(key)

    def set_value(key: Any, new: Any) -> None:
        if not isinstance(new, Parts):
            write_value(key, new)
            return
        key._value_buffer.close()
        key._value_buffer = new.buffer
        key.contentsize = new.size

    def get_object(self: Any) -> Any:
        local.streaming = True
        try:
            return original_get_object(self)
        finally:
            local.streaming = False

    def complete(self: Any, body: Iterator[tuple[int, str]]) -> tuple[Any, str, tuple[str, str, int] | None]:
        builder = MultipartChecksumBuilder(self.metadata.get("x-amz-checksum-algorithm"),
                                           self.metadata.get("x-amz-checksum-type"))
        composite = builder.checksum_type == "COMPOSITE"
        full = None if composite else _checksum(builder.checksum_algorithm, builder.checksum_type)
        if not composite and full is None:
            return original_complete(self, body)
        md5s = bytearray()
        parts: list[Any] = []
        composite_sums = bytearray()
        last = None
        for number, etag in body:  # checked as moto checks them (FakeMultipart.complete)
            part = self.parts.get(number)
            part_etag = part.etag.replace('"', "") if part is not None else None
            if part is None or part_etag != etag.replace('"', ""):
                raise InvalidPart()
            if last is not None and last.contentsize < S3_UPLOAD_PART_MIN_SIZE:
                raise EntityTooSmall()
            md5s.extend(bytes.fromhex(part_etag))
            if composite:
                composite_sums.extend(compute_checksum(b"".join(_chunks(part)), builder.checksum_algorithm,
                                                       encode_base64=False))
            parts.append(part)
            last = part
        if not parts:
            raise MalformedXML
        if composite:
            checksum = (builder.checksum_type,
                        compute_checksum(bytes(composite_sums), builder.checksum_algorithm).decode(), len(parts))
        else:
            assert full is not None
            digest = full(chunk for part in parts for chunk in _chunks(part))
            checksum = (builder.checksum_type, base64.b64encode(digest).decode(), 1)
        # The new object's buffer from here on (moto closes it when the object goes), or closed on a failure.
        assembled = tempfile.SpooledTemporaryFile()  # noqa: SIM115
        size = 0
        try:
            assembled.rollover()
            for part in parts:
                for chunk in _chunks(part):
                    assembled.write(chunk)
                    size += len(chunk)
        except BaseException:
            assembled.close()
            raise
        full_etag = hashlib.md5(bytes(md5s), usedforsecurity=False)
        return Parts(assembled, size), f"{full_etag.hexdigest()}-{len(parts)}", checksum

    def raw_response(body: Any) -> Any:
        return StoredRaw(body) if isinstance(body, StoredBytes) else original_raw(body)

    def normalize_request(request: Any) -> Any:
        normalized = original_normalize(request)
        made = getattr(local, "requests", None)
        if made is not None:
            made.append(normalized)
        return normalized

    def process_request(self: Any, request: Any) -> Any:
        made: list[Any] = []
        local.requests = made
        try:
            return original_process(self, request)
        finally:
            local.requests = None
            for normalized in made:
                normalized.environ.pop("werkzeug.request", None)  # the cycle: request -> environ -> request

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(FakeKey, "value", property(get_value, set_value)))
        stack.enter_context(mock.patch.object(S3Response, "get_object", get_object))
        stack.enter_context(mock.patch.object(FakeMultipart, "complete", complete))
        stack.enter_context(mock.patch.object(botocore_stubber, "MockRawResponse", raw_response))
        stack.enter_context(mock.patch.object(botocore_stubber, "normalize_request", normalize_request))
        stack.enter_context(mock.patch.object(botocore_stubber.BotocoreStubber, "process_request", process_request))
        yield


def load_without_instance_offerings() -> None:
    """Import EC2's instance types without their per-region offerings, unless something imported them already."""
    if "moto.ec2.models.instance_types" in sys.modules:
        return
    from moto.utilities import utils

    load_resource = utils.load_resource

    def load(resource: str) -> Any:
        return [] if _OFFERINGS in resource else load_resource(resource)

    with mock.patch.object(utils, "load_resource", load):
        import moto.ec2.models.instance_types  # noqa: F401
