"""In-memory fakes shared by tests: a RawSink, a recording ledger and helpers to build run plans."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from report_exporter.aws.ledger import Claim
from report_exporter.models.exports import ExportSpec, month_window
from report_exporter.models.payloads import CuratedObject, RawObject, RunPlan


@dataclass
class MemorySink:
    """Collects what an adapter streams, like S3RawSink, keeping nothing when the block raises."""

    files: dict[str, bytes] = field(default_factory=dict)
    objects: list[RawObject] = field(default_factory=list)

    @contextmanager
    def open(self, *, dataset: str, name: str, content_type: str,
             records: Callable[[], int | None] | None = None) -> Iterator[io.BytesIO]:
        buffer = io.BytesIO()
        yield buffer
        data = buffer.getvalue()
        self.files[name] = data
        self.objects.append(RawObject(dataset=dataset, key=name, bytes=len(data),
                                      sha256=hashlib.sha256(data).hexdigest(), content_type=content_type,
                                      records=records() if records else None))


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

    def polled(self, plan: RunPlan, *, job: str, polls: int, ready: bool, now: datetime) -> None:
        self.calls.append(("polled", {"job": job, "polls": polls, "ready": ready, "execution": plan.execution_id,
                                      "now": now}))

    def begin_download(self, plan: RunPlan, *, job: str, now: datetime) -> list[RawObject] | None:
        self.calls.append(("begin_download", {"job": job, "execution": plan.execution_id, "now": now}))
        return self.kept_raw

    def downloaded(self, plan: RunPlan, *, job: str, objects: list[RawObject], now: datetime) -> list[RawObject]:
        self.calls.append(("downloaded", {"job": job, "objects": objects, "execution": plan.execution_id,
                                          "now": now}))
        return self.keeps if self.keeps is not None else objects

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
