"""S3 keys and streaming: multipart uploads in constant memory, streaming reads, atomic publish."""

from __future__ import annotations

import contextvars
import hashlib
import queue
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from report_exporter.aws import clients
from report_exporter.errors import InvalidReportError, TransientError
from report_exporter.models.manifest import (
    MANIFEST_CONTENT_TYPE,
    MANIFEST_SUFFIX,
    RawManifest,
    is_manifest,
    manifest_key,
)
from report_exporter.models.payloads import RawObject, RunPlan
from report_exporter.ports import RecordCounter, ResumeStore

PART_SIZE = 8 * 1024 * 1024
CURATED_PART_SIZE = 5 * 1024 * 1024
"""S3's smallest part: a Parquet file staged by WriteParquet holds one part in memory, so its peak does not grow
between a report whose file fits in one PUT and one of several parts (bench/README.md, "peak at 3M rows")."""
UPLOAD_WINDOW = 1
"""Parts a raw download hands to its uploader thread ahead of the one it is filling (memory: 2 parts)."""
_READ_BACK_CHUNK = 1 << 20
# Key prefixes: the Lambdas' S3 grants are limited to them (infra/exporter_infra/constructs/exporter_functions.py).
RAW_PREFIX = "raw/"
CURATED_PREFIX = "curated/"
STAGING_PREFIX = f"{CURATED_PREFIX}_staging/"


def raw_key(plan: RunPlan, name: str) -> str:
    """``raw/<vendor>/<export>/<period>/<name>``: immutable, one per vendor report or run."""
    return f"{raw_prefix(plan.export.vendor_name.value, plan.export.name, plan.period)}{name}"


def raw_prefix(vendor: str, export: str, period: str) -> str:
    """``raw/<vendor>/<export>/<period>/``: every raw object of a month, each with its manifest beside it."""
    return f"{RAW_PREFIX}{vendor}/{export}/{period}/"


def curated_key(dataset: str, export: str, period: str) -> str:
    """The one Parquet object of a partition: a rerun replaces it instead of adding rows."""
    return f"{CURATED_PREFIX}{dataset}/export={export}/period={period}/data.parquet"


def staging_key(dataset: str, export: str, period: str, run: str) -> str:
    """Where the Parquet file is written before it is published (outside every table's location)."""
    return f"{STAGING_PREFIX}{dataset}/{export}/{period}/{run}.parquet"


class PartUploader:
    """One background thread that uploads the parts of one multipart upload, in order.

    At most ``window`` parts are handed over and not yet uploaded, so the download goes on filling the
    next part while one is on its way to S3, in bounded memory (``window`` + 1 parts). The first error of
    an upload is kept; every later part is dropped, and the error is raised on the caller's thread by
    :meth:`submit`, :meth:`raise_error` or :meth:`wait`.
    """

    def __init__(self, send: Callable[[int, bytearray], str], *, window: int) -> None:
        self._send = send
        self._slots = threading.Semaphore(window)
        self._todo: queue.SimpleQueue[tuple[int, bytearray] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[int, str]] = queue.SimpleQueue()
        self._idle = threading.Condition()
        self._pending = 0
        self._cancelled = False
        self.error: BaseException | None = None
        # In the caller's context: what it carries (log keys, the local runner's sandbox) holds for the uploads.
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run,), name="s3-part-uploader", daemon=True)
        self._thread.start()

    def submit(self, number: int, body: bytearray, *, before: Callable[[], None] | None = None) -> None:
        """Hand part ``number`` over; blocks while ``window`` parts are still on their way.

        ``before`` runs once a slot is free and before the part is handed over: what it sees in
        :meth:`finished` is then done before this part's upload starts (a resumable download saves the
        cursors of the parts uploaded so far there, so a process that dies sending this part keeps them).
        """
        self.raise_error()
        self._slots.acquire()
        if self.error is not None:
            self._slots.release()
            self.raise_error()
        if before is not None:
            try:
                before()
            except BaseException:
                self._slots.release()
                raise
        with self._idle:
            self._pending += 1
        self._todo.put((number, body))

    def finished(self) -> list[tuple[int, str]]:
        """Part numbers and ETags uploaded since the last call, in order."""
        done: list[tuple[int, str]] = []
        with suppress(queue.Empty):
            while True:
                done.append(self._done.get_nowait())
        return done

    def raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def wait(self) -> None:
        """Until every part handed over is uploaded (or dropped after an error); then raise that error."""
        with self._idle:
            while self._pending:
                self._idle.wait()
        self.raise_error()

    def close(self, *, cancel: bool = False) -> None:
        """Stop the thread once the part on its way is sent; with ``cancel``, drop the parts not yet started."""
        self._cancelled = cancel
        self._todo.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (item := self._todo.get()) is not None:
            number, body = item
            item = None
            try:
                if self.error is None and not self._cancelled:
                    self._done.put((number, self._send(number, body)))
            except BaseException as exc:  # raised again on the download thread
                self.error = exc
            finally:
                del body
                self._slots.release()
                with self._idle:
                    self._pending -= 1
                    self._idle.notify_all()


class MultipartWriter:
    """A write-only file object that streams into one S3 object, part by part.

    Nothing is visible until :meth:`commit`; :meth:`abort` drops the uploaded parts. Also computes the
    sha256 and size of what was written. With ``window`` 0 each part is uploaded by :meth:`write` (memory:
    one part); with ``window`` n > 0 a :class:`PartUploader` thread uploads them while the caller hashes
    each part it has handed over and writes on (memory: n + 1 parts), and an upload's error is raised by a
    later ``write`` or by ``commit``.
    """

    def __init__(self, bucket: str, key: str, *, content_type: str, part_size: int = PART_SIZE,
                 window: int = 0) -> None:
        self.bucket = bucket
        self.key = key
        self.content_type = content_type
        self._part_size = part_size
        self._window = window
        self._uploader: PartUploader | None = None
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._submitted = 0
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
        if self._uploader is not None:
            self._uploader.raise_error()  # stop the download as soon as an upload failed
        view = memoryview(data).cast("B")
        if not self._window:
            self._hash.update(view)
        self._size += len(view)
        self._buffer += view
        if len(self._buffer) >= self._part_size:
            # Parts may be any size >= 5 MiB but the last: ship the whole buffer as it is (boto3 takes a
            # bytearray), no copy, no slicing; then start a new one rather than resize what was sent.
            body = self._buffer
            self._submit_part(body)
            self._buffer = bytearray()
            self._hash_sent(body)
        return len(view)

    def _submit_part(self, body: bytearray) -> int:
        """Upload ``body`` as the next part (on the uploader thread when there is one); its number."""
        if self._upload_id is None:
            self._upload_id = clients.s3().create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type, ServerSideEncryption="AES256"
            )["UploadId"]
        self._submitted += 1
        number = self._submitted
        if self._window <= 0:
            self._parts.append({"PartNumber": number, "ETag": self._send_part(number, body)})
            return number
        if self._uploader is None:
            self._uploader = PartUploader(self._send_part, window=self._window)
        self._uploader.submit(number, body, before=self._before_next_part)
        self._collect()
        return number

    def _before_next_part(self) -> None:
        """On the caller's thread, once the uploader has room for the next part and before it gets it."""
        return None

    def _hashed(self) -> bool:
        """Whether this writer's sha256 covers what it writes."""
        return True

    def _hash_sent(self, body: bytearray) -> None:
        """Hash a part just handed to the uploader, in order, while it is sent (hashlib and the socket both
        let go of the GIL): on the caller's thread, off the upload's path, the slower one whenever S3 takes
        parts slower than the vendor gives them (with ``window`` 0, :meth:`write` hashed it already)."""
        if self._window and self._hashed():
            self._hash.update(body)

    def _send_part(self, number: int, body: bytearray) -> str:
        etag: str = clients.s3().upload_part(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id,
                                             PartNumber=number, Body=body)["ETag"]
        return etag

    def _collect(self) -> None:
        """Take the parts the uploader has finished into :attr:`_parts` (in order: one thread uploads them)."""
        if self._uploader is not None:
            self._parts.extend({"PartNumber": n, "ETag": etag} for n, etag in self._uploader.finished())

    def _settle(self) -> None:
        """Wait until every part handed over is uploaded; raise the first upload error."""
        if self._uploader is not None:
            try:
                self._uploader.wait()
            finally:
                self._collect()

    def _stop_uploader(self, *, cancel: bool) -> None:
        if self._uploader is not None:
            self._uploader.close(cancel=cancel)
            self._collect()
            self._uploader = None

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
            if self._window and self._hashed():
                self._hash.update(self._buffer)
            s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=self._buffer,
                ContentType=self.content_type,
                ServerSideEncryption="AES256",
            )
        else:
            if self._buffer:
                body = self._buffer
                self._submit_part(body)
                self._hash_sent(body)
            self._settle()
            self._stop_uploader(cancel=False)
            s3.complete_multipart_upload(
                Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
            )
        self._buffer = bytearray()
        self._done = True

    def abort(self) -> None:
        # The part on its way is let finish first: a part uploaded after the abort would be billed for ever.
        self._stop_uploader(cancel=True)
        if self._upload_id is not None and not self._done:
            clients.s3().abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self._upload_id)
        self._buffer = bytearray()
        self._done = True


@dataclass(frozen=True)
class _Checkpoint:
    """The cursor to save once part ``number`` is uploaded (None: forget the saved one there)."""

    number: int
    bytes: int
    state: dict[str, Any] | None


class ResumableMultipartWriter(MultipartWriter):
    """A :class:`MultipartWriter` whose parts outlive a failed attempt (``adapters.base.ResumableWriter``).

    Parts are cut only at the adapter's checkpoints, once a part's worth is buffered, so every kept part ends
    on a unit the adapter can resume after (a page, a byte of a file). A part's cursor is saved to the store
    only once that part and every part before it are uploaded, in order, on the caller's thread (before the
    next part is handed to the uploader, at a later checkpoint, at :meth:`commit`, or by :meth:`settle` when
    the attempt fails). A writer opened on a saved
    cursor continues that upload: its parts are checked against S3 first (ListParts), and an upload that is
    gone (completed, aborted, expired by the bucket's lifecycle rule) or whose parts differ is dropped for a
    fresh start.
    """

    def __init__(self, bucket: str, key: str, *, content_type: str, dataset: str, store: ResumeStore | None,
                 part_size: int = PART_SIZE, window: int = 0) -> None:
        super().__init__(bucket, key, content_type=content_type, part_size=part_size, window=window)
        self._dataset = dataset
        self._store = store
        self._saved = False
        self._checkpoints: list[_Checkpoint] = []
        self.resumed: dict[str, Any] | None = None
        self.resumed_at = 0
        """Bytes an earlier attempt kept (0: this attempt wrote, and hashed, every byte)."""
        saved = store.load() if store is not None else None
        if saved is not None:
            self._adopt(saved)

    def _adopt(self, saved: dict[str, Any]) -> None:
        try:
            key, upload_id, etags = str(saved["key"]), str(saved["upload_id"]), [str(e) for e in saved["etags"]]
            size, state = int(saved["bytes"]), saved.get("state")
        except (KeyError, TypeError, ValueError):
            self._forget()
            return
        same_place = key.rsplit("/", 1)[0] == self.key.rsplit("/", 1)[0]
        if saved.get("dataset") != self._dataset or not same_place or not etags or not isinstance(state, dict):
            self._forget()
            return
        if _listed_etags(self.bucket, key, upload_id, len(etags)) != etags:
            # Gone or not what was saved: start over (an upload still open is dropped by the lifecycle rule).
            self._forget()
            return
        # Continue the saved upload, under its key (another execution may have started it).
        self.key = key
        self._upload_id = upload_id
        self._parts = [{"PartNumber": n, "ETag": etag} for n, etag in enumerate(etags, start=1)]
        self._submitted = len(etags)
        self._size = self.resumed_at = size
        self._saved = True
        self.resumed = state

    def _forget(self) -> None:
        if self._store is not None:
            self._store.clear()
        self._saved = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer ``data``; parts are uploaded at checkpoints only."""
        view = memoryview(data).cast("B")
        if not self._window and self._hashed():
            self._hash.update(view)
        self._size += len(view)
        self._buffer += view
        return len(view)

    def checkpoint(self, cursor: Mapping[str, Any] | None) -> None:
        if self._uploader is not None:
            self._uploader.raise_error()  # stop the download as soon as an upload failed
        body = None
        if len(self._buffer) >= self._part_size:
            body = self._buffer
            number = self._submit_part(body)
            self._buffer = bytearray()
            state = dict(cursor) if cursor is not None and self._store is not None else None
            self._checkpoints.append(_Checkpoint(number, self._size, state))
        self._save_uploaded()
        if body is not None:
            self._hash_sent(body)

    def _before_next_part(self) -> None:
        # The parts before this one are uploaded, and their cursors saved, before this part's upload starts:
        # a process that dies sending part n has kept parts 1..n-1 (one DynamoDB write on the upload's path
        # per part, against a hash of the part that is not on it).
        self._save_uploaded()

    def _save_uploaded(self) -> None:
        """Save (in order) the cursor of every part uploaded since the last save."""
        self._collect()
        uploaded = len(self._parts)
        while self._checkpoints and self._checkpoints[0].number <= uploaded:
            point = self._checkpoints.pop(0)
            if point.state is None or self._store is None:
                if self._saved:
                    self._forget()  # the saved cursor no longer matches the parts
                continue
            self._store.save({
                "key": self.key, "upload_id": self._upload_id,
                "etags": [p["ETag"] for p in self._parts[:point.number]], "bytes": point.bytes,
                "dataset": self._dataset, "content_type": self.content_type, "state": point.state,
            })
            self._saved = True

    def _settle(self) -> None:
        try:
            super()._settle()
        finally:
            self._save_uploaded()

    def settle(self) -> None:
        """When the attempt fails: wait for the parts on their way and save the cursors of those uploaded.

        Never raises: an upload's error was, or will be, raised by ``write``/``checkpoint``/``commit``; a
        save that fails (the lease is lost) leaves the last saved cursor, as a failing checkpoint would.
        """
        if self._uploader is None:
            return
        with suppress(Exception):
            self._uploader.close(cancel=False)
        self._collect()
        self._uploader = None
        with suppress(Exception):
            self._save_uploaded()
        self._checkpoints.clear()

    def restart(self) -> None:
        self._stop_uploader(cancel=True)
        self._checkpoints.clear()
        if self._upload_id is not None:
            _abort_quietly(self.bucket, self.key, self._upload_id)
        if self._saved:
            self._forget()
        self._upload_id = None
        self._parts = []
        self._submitted = 0
        self._buffer = bytearray()
        self._hash = hashlib.sha256()
        self._size = 0
        self.resumed = None
        self.resumed_at = 0

    def _hashed(self) -> bool:
        return not self.resumed_at

    @property
    def sha256(self) -> str:
        if self.resumed_at:
            raise RuntimeError("a resumed object's sha256 is known only by reading it back")
        return self._hash.hexdigest()

    def keeps(self, error: BaseException) -> bool:
        """Whether to keep the upload for the next attempt when ``error`` ends this one.

        Kept when the ledger names it and the error is transient (a vendor or the lease will be back) or
        the process is dying (a timeout, a kill: nothing would run anyway). Anything else fails the run.
        Call :meth:`settle` first, so the parts on their way count.
        """
        transient = isinstance(error, TransientError) or not isinstance(error, Exception)
        return self._saved and self._upload_id is not None and transient and not self._done

    def abort(self) -> None:
        super().abort()
        self._checkpoints.clear()
        if self._saved:
            self._forget()


def _listed_etags(bucket: str, key: str, upload_id: str, count: int) -> list[str] | None:
    """ETags of parts 1..``count`` of an open upload (None when it is gone)."""
    etags: dict[int, str] = {}
    try:
        pages = clients.s3().get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id)
        for page in pages:
            etags.update({int(p["PartNumber"]): str(p["ETag"]) for p in page.get("Parts", [])})
    except clients.client_error() as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("NoSuchUpload", "NoSuchKey", "404"):
            return None
        raise
    listed = [etags.get(n) for n in range(1, count + 1)]
    return None if None in listed else [str(e) for e in listed]


def _abort_quietly(bucket: str, key: str, upload_id: str) -> None:
    try:
        clients.s3().abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except clients.client_error() as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
            raise


def read_back(bucket: str, key: str, counter: RecordCounter | None) -> tuple[str, int]:
    """sha256 and size of a stored object, read once in chunks, feeding ``counter`` on the way."""
    digest = hashlib.sha256()
    size = 0
    body = open_object(bucket, key)
    try:
        while chunk := body.read(_READ_BACK_CHUNK):
            digest.update(chunk)
            size += len(chunk)
            if counter is not None:
                counter.feed(chunk)
    finally:
        body.close()
    return digest.hexdigest(), size


class S3RawSink:
    """The adapters' :class:`~report_exporter.adapters.base.RawSink`, backed by S3 multipart uploads.

    Each object that completes gets its manifest (``models/manifest.py``) beside it, written by one PUT
    after the object's upload is committed: a manifest is there only for a whole object.
    """

    def __init__(self, bucket: str, plan: RunPlan, *, resume: ResumeStore | None = None,
                 report_id: str | None = None, job: str | None = None, now: datetime | None = None) -> None:
        self._bucket = bucket
        self._plan = plan
        self._resume = resume
        self._report_id = report_id
        self._job = job
        self._now = now
        self._resumable_opened = False
        self.objects: list[RawObject] = []

    def _kept(self, obj: RawObject, params: Mapping[str, str] | None) -> None:
        put_manifest(self._bucket, RawManifest.describe(self._plan, obj, params=params, report_id=self._report_id,
                                                        job=self._job, exported_at=self._now))
        self.objects.append(obj)

    @contextmanager
    def open(
        self, *, dataset: str, name: str, content_type: str, records: Callable[[], int | None] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Iterator[MultipartWriter]:
        writer = MultipartWriter(self._bucket, raw_key(self._plan, name), content_type=content_type,
                                 window=UPLOAD_WINDOW)
        try:
            yield writer
            writer.commit()
        except BaseException:
            # Whatever failed (the vendor stream, a part, the last part or the complete call), no
            # multipart upload is left open: its parts would be billed and the object never appear.
            writer.abort()
            raise
        self._kept(
            RawObject(
                dataset=dataset,
                key=writer.key,
                bytes=writer.size,
                sha256=writer.sha256,
                content_type=content_type,
                records=records() if records else None,
            ),
            params,
        )

    @contextmanager
    def open_resumable(
        self, *, dataset: str, name: str, content_type: str, records: Callable[[], int | None] | None = None,
        recount: Callable[[], RecordCounter] | None = None, params: Mapping[str, str] | None = None,
    ) -> Iterator[ResumableMultipartWriter]:
        if self._resumable_opened:
            raise RuntimeError("one resumable raw object per download: the ledger keeps one cursor")
        self._resumable_opened = True
        writer = ResumableMultipartWriter(self._bucket, raw_key(self._plan, name), content_type=content_type,
                                          dataset=dataset, store=self._resume, window=UPLOAD_WINDOW)
        try:
            yield writer
            writer.commit()
        except BaseException as exc:
            writer.settle()
            if not writer.keeps(exc):
                writer.abort()
            raise
        if writer.resumed_at:
            # Part of the object came from an earlier attempt, whose hash (and counter) state is gone: read
            # the completed object back once.
            counter = recount() if recount else None
            sha256, size = read_back(self._bucket, writer.key, counter)
            if size != writer.size:
                raise RuntimeError(f"raw object {writer.key}: {size} bytes stored, {writer.size} written")
            count = counter.records() if counter is not None else (records() if records else None)
        else:
            sha256, count = writer.sha256, records() if records else None
        self._kept(RawObject(dataset=dataset, key=writer.key, bytes=writer.size, sha256=sha256,
                             content_type=content_type, records=count), params)


class S3RawStore:
    """The raw bucket as the steps' raw store (``ports.RawStore``): one sink per run, streaming reads."""

    def __init__(self, bucket: str) -> None:
        self._bucket = bucket

    def sink(self, plan: RunPlan, *, resume: ResumeStore | None = None, report_id: str | None = None,
             job: str | None = None, now: datetime | None = None) -> S3RawSink:
        return S3RawSink(self._bucket, plan, resume=resume, report_id=report_id, job=job, now=now)

    def read(self, key: str) -> IO[bytes]:
        return open_object(self._bucket, key)

    def manifest(self, key: str) -> RawManifest:
        return read_manifest(self._bucket, key)


def put_manifest(bucket: str, manifest: RawManifest) -> None:
    """Write ``manifest`` beside its raw object (one PUT: it appears whole or not at all)."""
    clients.s3().put_object(Bucket=bucket, Key=manifest_key(manifest.key), Body=manifest.to_json(),
                            ContentType=MANIFEST_CONTENT_TYPE, ServerSideEncryption="AES256")


def read_manifest(bucket: str, raw: str) -> RawManifest:
    """The manifest of the raw object ``raw``.

    Raises:
        InvalidReportError: there is none (the object is incomplete, or was kept before raw objects had
            manifests), or it is not a manifest of that object.
    """
    key = manifest_key(raw)
    try:
        data = clients.s3().get_object(Bucket=bucket, Key=key)["Body"].read()
    except clients.client_error() as exc:
        if getattr(exc, "response", {}).get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
            raise
        raise InvalidReportError(f"{raw}: no manifest beside it ({key}); nothing says what the file answers") from None
    try:
        manifest = RawManifest.from_json(data)
    except ValueError as exc:
        raise InvalidReportError(f"{key}: not a raw-file manifest ({str(exc).splitlines()[0][:200]})") from None
    if manifest.key != raw:
        raise InvalidReportError(f"{key}: the manifest describes {manifest.key}, not {raw}")
    return manifest


def list_manifests(bucket: str, prefix: str) -> list[RawManifest]:
    """Every manifest under ``prefix`` (a month's raw prefix), in key order."""
    found: list[RawManifest] = []
    for page in clients.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            key = str(item["Key"])
            if is_manifest(key):
                found.append(read_manifest(bucket, key.removesuffix(MANIFEST_SUFFIX)))
    return found


def list_folders(bucket: str, prefix: str) -> list[str]:
    """The ``folder/`` names right under ``prefix`` (one listing with a delimiter)."""
    folders: list[str] = []
    for page in clients.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
        folders.extend(str(p["Prefix"]).removeprefix(prefix) for p in page.get("CommonPrefixes", []))
    return folders


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


class S3CuratedStore:
    """The curated bucket as WriteParquet's curated store (``ports.CuratedStore``)."""

    def __init__(self, bucket: str) -> None:
        self.bucket = bucket

    def partition_key(self, dataset: str, export: str, period: str) -> str:
        return curated_key(dataset, export, period)

    def staging_key(self, dataset: str, export: str, period: str, run: str) -> str:
        return staging_key(dataset, export, period, run)

    def upload(self, key: str, *, content_type: str) -> MultipartWriter:
        return MultipartWriter(self.bucket, key, content_type=content_type, part_size=CURATED_PART_SIZE)

    def tail(self, key: str, length: int) -> bytes:
        return object_tail(self.bucket, key, length)

    def publish(self, staged: str, final: str) -> None:
        publish(self.bucket, staged, final)

    def delete(self, key: str) -> None:
        delete(self.bucket, key)
