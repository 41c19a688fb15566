"""In-memory fakes of the ports (report_exporter.ports) shared by tests: a raw sink and raw store, a curated store,
a recording ledger, and helpers to build run plans."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import report_exporter
from report_exporter.aws.s3 import curated_key, staging_key
from report_exporter.clock import VirtualClock
from report_exporter.errors import InvalidReportError
from report_exporter.models.exports import ExportSpec, month_window
from report_exporter.models.manifest import RawManifest
from report_exporter.models.payloads import CuratedObject, RawObject, RunPlan
from report_exporter.ports import Claim, RecordCounter, ResumeStore


class MemoryResumable:
    """A resumable raw object in memory: a part is "kept" at each checkpoint once ``part_size`` bytes wait."""

    def __init__(self, kept: bytes = b"", cursor: dict[str, Any] | None = None, part_size: int = 1 << 20) -> None:
        self.kept = kept
        """Bytes kept at the last checkpoint that cut a part (what a next attempt would resume with)."""
        self.cursor = cursor
        """The cursor kept with them."""
        self.resumed = cursor
        self.buffer = bytearray()
        self.part_size = part_size
        self.checkpoints: list[dict[str, Any] | None] = []
        self.restarts = 0

    def write(self, data: bytes) -> int:
        self.buffer += data
        return len(data)

    def tell(self) -> int:
        return len(self.kept) + len(self.buffer)

    def checkpoint(self, cursor: Mapping[str, Any] | None) -> None:
        self.checkpoints.append(None if cursor is None else dict(cursor))
        if len(self.buffer) >= self.part_size:
            self.kept += bytes(self.buffer)
            self.buffer.clear()
            self.cursor = None if cursor is None else dict(cursor)

    def restart(self) -> None:
        self.kept, self.cursor, self.resumed = b"", None, None
        self.buffer.clear()
        self.restarts += 1

    def data(self) -> bytes:
        return self.kept + bytes(self.buffer)


@dataclass
class MemorySink:
    """Collects what an adapter streams, like S3RawSink, keeping nothing when the block raises.

    ``resume`` starts the next resumable object from kept bytes and a cursor, as a next attempt would;
    ``last`` is the last resumable object opened (kept bytes and cursor survive a failed block, as in S3).
    """

    files: dict[str, bytes] = field(default_factory=dict)
    objects: list[RawObject] = field(default_factory=list)
    resume: tuple[bytes, dict[str, Any]] | None = None
    part_size: int = 1 << 20
    last: MemoryResumable | None = None
    params: dict[str, dict[str, str]] = field(default_factory=dict)
    """Per file name, the ``params`` its manifest would carry (only files opened with some)."""

    @contextmanager
    def open_resumable(self, *, dataset: str, name: str, content_type: str,
                       records: Callable[[], int | None] | None = None,
                       recount: Callable[[], RecordCounter] | None = None,
                       params: Mapping[str, str] | None = None) -> Iterator[MemoryResumable]:
        kept, cursor = self.resume or (b"", None)
        writer = self.last = MemoryResumable(kept, cursor, self.part_size)
        yield writer
        data = writer.data()
        count: int | None
        if writer.resumed is not None and recount is not None:
            counter = recount()
            counter.feed(data)
            count = counter.records()
        else:
            count = records() if records else None
        self.files[name] = data
        if params:
            self.params[name] = dict(params)
        self.objects.append(RawObject(dataset=dataset, key=name, bytes=len(data),
                                      sha256=hashlib.sha256(data).hexdigest(), content_type=content_type,
                                      records=count))

    @contextmanager
    def open(self, *, dataset: str, name: str, content_type: str,
             records: Callable[[], int | None] | None = None,
             params: Mapping[str, str] | None = None) -> Iterator[io.BytesIO]:
        buffer = io.BytesIO()
        yield buffer
        data = buffer.getvalue()
        self.files[name] = data
        if params:
            self.params[name] = dict(params)
        self.objects.append(RawObject(dataset=dataset, key=name, bytes=len(data),
                                      sha256=hashlib.sha256(data).hexdigest(), content_type=content_type,
                                      records=records() if records else None))


@dataclass
class MemoryRawStore:
    """The raw store in memory: ``files`` by key; each run's sink (a :class:`MemorySink`) adds to them.

    ``reads`` lists the keys read, and every body read is closed by the reader (``open_bodies`` stays empty).
    """

    files: dict[str, bytes] = field(default_factory=dict)
    sinks: list[tuple[RunPlan, MemorySink]] = field(default_factory=list)
    resumes: list[ResumeStore | None] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    open_bodies: list[io.BytesIO] = field(default_factory=list)
    described: list[dict[str, object]] = field(default_factory=list)
    """Per sink, what its objects' manifests would name: the report, the job and when."""
    manifests: dict[str, RawManifest] = field(default_factory=dict)
    """The manifest beside each raw object, by the object's key."""

    def put(self, plan: RunPlan, obj: RawObject, body: bytes, *, report_id: str | None = None) -> RawObject:
        """Keep ``body`` as ``obj`` with its manifest, as a completed download does."""
        self.files[obj.key] = body
        self.manifests[obj.key] = RawManifest.describe(plan, obj, report_id=report_id)
        return obj

    def manifest(self, key: str) -> RawManifest:
        if key not in self.manifests:
            raise InvalidReportError(f"{key}: no manifest beside it")
        return self.manifests[key]

    def sink(self, plan: RunPlan, *, resume: ResumeStore | None = None, report_id: str | None = None,
             job: str | None = None, now: datetime | None = None) -> MemorySink:
        self.sinks.append((plan, MemorySink()))
        self.resumes.append(resume)
        self.described.append({"report_id": report_id, "job": job, "now": now})
        return self.sinks[-1][1]

    def read(self, key: str) -> io.BytesIO:
        self.reads.append(key)
        if key not in self.files:
            raise FileNotFoundError(f"raw object {key} does not exist")
        store = self

        class Body(io.BytesIO):
            def close(self) -> None:
                if self in store.open_bodies:
                    store.open_bodies.remove(self)
                super().close()

        body = Body(self.files[key])
        self.open_bodies.append(body)
        return body


class MemoryUpload(io.BytesIO):
    """A curated upload in memory: visible in its store only once committed."""

    def __init__(self, store: MemoryCuratedStore, key: str, content_type: str) -> None:
        super().__init__()
        self.store, self.key, self.content_type = store, key, content_type
        self.committed = self.aborted = False

    @property
    def size(self) -> int:
        return len(self.getbuffer())

    def close(self) -> None:
        """pyarrow closes its sink when it finishes; the bytes stay until commit or abort."""

    def commit(self) -> None:
        if self.store.fail_commit is not None:
            raise self.store.fail_commit
        self.store.objects[self.key] = self.getvalue()
        self.store.content_types[self.key] = self.content_type
        self.committed = True

    def abort(self) -> None:
        self.aborted = True


@dataclass
class MemoryCuratedStore:
    """The curated store in memory: ``objects`` by key, with the same key layout as the curated bucket."""

    objects: dict[str, bytes] = field(default_factory=dict)
    content_types: dict[str, str] = field(default_factory=dict)
    uploads: list[MemoryUpload] = field(default_factory=list)
    published: list[tuple[str, str]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    fail_commit: Exception | None = None
    tamper: Callable[[bytes], bytes] | None = None
    """Changes an object's bytes as the footer is read back (a store that lost or garbled part of it)."""

    def partition_key(self, dataset: str, export: str, period: str) -> str:
        return curated_key(dataset, export, period)

    def staging_key(self, dataset: str, export: str, period: str, run: str) -> str:
        return staging_key(dataset, export, period, run)

    def upload(self, key: str, *, content_type: str) -> MemoryUpload:
        self.uploads.append(MemoryUpload(self, key, content_type))
        return self.uploads[-1]

    def tail(self, key: str, length: int) -> bytes:
        data = self.objects[key]
        if self.tamper is not None:
            data = self.tamper(data)
        return data[-length:]

    def publish(self, staged: str, final: str) -> None:
        self.published.append((staged, final))
        self.objects[final] = self.objects.pop(staged)
        self.content_types[final] = self.content_types.pop(staged)

    def delete(self, key: str) -> None:
        self.deleted.append(key)
        self.objects.pop(key, None)


def plan_for(export: ExportSpec, period: str = "2026-10", *, now: datetime | None = None,
             deadline_minutes: int | None = None) -> RunPlan:
    now = now or datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
    minutes = deadline_minutes if deadline_minutes is not None else export.report_deadline_minutes
    return RunPlan(export=export, window=month_window(period, export.timezone),
                   execution_id=f"arn:aws:states:us-east-1:123456789012:execution:m:{export.name}-{period}",
                   started_at=now, deadline=now + timedelta(minutes=minutes))


@dataclass
class RecordingLedger:
    """Stands in for the ledger in logic tests: records every call, answers as scripted.

    The ledger's own conditions are tested against DynamoDB (tests/integration/test_ledger.py); here
    what matters is which calls a step makes and what it does with the answers.
    """

    claim_answer: Claim = field(default_factory=lambda: Claim(adopt=False))
    slot_error: Exception | None = None
    kept_raw: list[RawObject] | None = None
    published_by_other: list[CuratedObject] | None = None
    failed_answer: bool = True
    cursor: dict[str, Any] | None = None
    keeps: list[RawObject] | None = None
    """What ``downloaded`` answers the ledger keeps (None: the objects it was given)."""
    calls: list[tuple[str, dict[str, object]]] = field(default_factory=list)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]

    def args(self, name: str) -> list[dict[str, object]]:
        return [kwargs for called, kwargs in self.calls if called == name]

    def claim(self, plan: RunPlan, *, now: datetime) -> Claim:
        self.calls.append(("claim", {"execution": plan.execution_id, "now": now}))
        return self.claim_answer

    def acquire_slot(self, plan: RunPlan, cap: int, *, now: datetime) -> None:
        self.calls.append(("acquire_slot", {"cap": cap, "execution": plan.execution_id, "now": now}))
        if self.slot_error is not None:
            raise self.slot_error

    def release_slot(self, account: str, execution: str) -> None:
        self.calls.append(("release_slot", {"account": account, "execution": execution}))

    def requested(self, plan: RunPlan, *, job: str, report_id: str | None, ready: bool, now: datetime) -> None:
        self.calls.append(("requested", {"job": job, "report_id": report_id, "ready": ready,
                                         "execution": plan.execution_id, "now": now}))

    def polled(self, plan: RunPlan, *, job: str, polls: int, ready: bool, now: datetime,
               link_expires_at: datetime | None = None) -> None:
        self.calls.append(("polled", {"job": job, "polls": polls, "ready": ready, "link_expires_at": link_expires_at,
                                      "execution": plan.execution_id, "now": now}))

    def begin_download(self, plan: RunPlan, *, job: str, now: datetime) -> list[RawObject] | None:
        self.calls.append(("begin_download", {"job": job, "execution": plan.execution_id, "now": now}))
        return self.kept_raw

    def downloaded(self, plan: RunPlan, *, job: str, objects: list[RawObject], now: datetime) -> list[RawObject]:
        self.calls.append(("downloaded", {"job": job, "objects": objects, "execution": plan.execution_id,
                                          "now": now}))
        self.cursor = None
        return self.keeps if self.keeps is not None else objects

    def download_cursor(self, plan: RunPlan, *, job: str) -> dict[str, Any] | None:
        self.calls.append(("download_cursor", {"job": job}))
        return self.cursor if self.cursor and self.cursor.get("job") == job else None

    def save_download_cursor(self, plan: RunPlan, *, job: str, cursor: dict[str, Any]) -> None:
        self.calls.append(("save_download_cursor", {"job": job}))
        self.cursor = {**cursor, "job": job}

    def clear_download_cursor(self, plan: RunPlan, *, job: str) -> None:
        self.calls.append(("clear_download_cursor", {"job": job}))
        self.cursor = None

    def begin_publish(self, plan: RunPlan, *, job: str, now: datetime) -> list[CuratedObject] | None:
        self.calls.append(("begin_publish", {"job": job, "execution": plan.execution_id, "now": now}))
        return self.published_by_other

    def published(self, plan: RunPlan, *, job: str, objects: list[CuratedObject], now: datetime) -> None:
        self.calls.append(("published", {"job": job, "rows": sum(o.rows for o in objects), "objects": objects,
                                         "execution": plan.execution_id, "now": now}))

    def record_replay(self, plan: RunPlan, objects: list[CuratedObject], *, now: datetime) -> None:
        self.calls.append(("record_replay", {"rows": sum(o.rows for o in objects), "objects": objects,
                                             "execution": plan.execution_id, "now": now}))

    def failed(self, *, export: str, period: str, execution: str, error: str, message: str, now: datetime,
               only_if_owner: bool = False) -> bool:
        self.calls.append(("failed", {"export": export, "period": period, "execution": execution, "error": error,
                                      "message": message, "only_if_owner": only_if_owner, "now": now}))
        return self.failed_answer

    def ended(self, *, export: str, period: str, account: str | None, execution: str, now: datetime) -> None:
        self.calls.append(("ended", {"export": export, "period": period, "account": account, "execution": execution,
                                     "now": now}))

    def record_run(self, *, export: str, period: str, add: Mapping[str, int | Decimal], values: Mapping[str, Any],
                   ) -> bool:
        self.calls.append(("record_run", {"export": export, "period": period, "add": dict(add),
                                          "values": dict(values)}))
        return True


class SleepLog(VirtualClock):
    """Virtual time that also keeps each wait asked of it."""

    def __init__(self, start: datetime) -> None:
        super().__init__(start)
        self.sleeps: list[float] = []

    def sleep(self, seconds: float, *, cancelled: Callable[[], bool] | None = None) -> None:
        self.sleeps.append(seconds)
        super().sleep(seconds, cancelled=cancelled)


def fresh_python(code: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports this checkout's ``report_exporter`` (the package's own
    folder, not resolved: a staged copy, as the mutation run makes, stays the copy)."""
    package = Path(report_exporter.__file__).parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)
