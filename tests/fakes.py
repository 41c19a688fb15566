"""In-memory fakes shared by tests: a RawSink and helpers to build run plans."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from report_exporter.models.exports import ExportSpec, month_window
from report_exporter.models.payloads import RawObject, RunPlan


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
