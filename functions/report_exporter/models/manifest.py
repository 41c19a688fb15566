"""The raw-file contract: a manifest beside every raw object saying what that object answers.

DownloadReport writes ``<key>.manifest.json`` next to each raw object once the object is complete (one
PUT after the upload is committed, so a manifest's presence means its object is whole). It holds what a
reader needs to turn the bytes into rows, and nothing from today's configuration is needed besides:

- who and when: vendor, export name, dataset, period and its window, the vendor's report id, the ledger
  job, the execution and when the object was downloaded (``exported_at``);
- what was asked: ``request``, the export as the run requested the report (its vendor settings: Particle's
  report type, HERE's detail level and charge type, Telnyx's product, dimensions and metrics, Senet's
  applications, KORE's granularity and SIM) and ``params``, what this one object answers within it
  (Senet's details file: its application EUI);
- what was kept: size, sha256, content type and, when the vendor said, the record count.

Never a secret, a token or a signed URL: the export model holds none (only the name of its secret), and
download links are never part of a request. ``WriteParquet`` builds its ``ReadContext`` from the manifest
and ``report-exporter replay`` rebuilds a month from the raw prefix's manifests alone.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, Field

from report_exporter.models.exports import ExportSpec, VendorName, Window
from report_exporter.models.exports.base import Frozen
from report_exporter.models.payloads import RawObject, RunPlan

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_CONTENT_TYPE = "application/json"


def manifest_key(raw_key: str) -> str:
    """Where the manifest of the raw object ``raw_key`` is kept: beside it, same name plus ``.manifest.json``."""
    return f"{raw_key}{MANIFEST_SUFFIX}"


def is_manifest(key: str) -> bool:
    return key.endswith(MANIFEST_SUFFIX)


class RawManifest(Frozen):
    """What one raw object answers (see the module docstring)."""

    format: Literal[1] = 1
    vendor: VendorName
    export: str = Field(min_length=1)
    dataset: str = Field(min_length=1)
    period: str
    window: Window
    request: ExportSpec
    """The export as the run asked the vendor for this report."""
    params: dict[str, str] = Field(default_factory=dict)
    """What this object answers within the request (Senet details: ``application_eui``)."""
    key: str = Field(min_length=1)
    content_type: str
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    records: int | None = Field(default=None, ge=0)
    report_id: str | None = None
    job: str | None = None
    execution_id: str = Field(min_length=1)
    exported_at: AwareDatetime

    @classmethod
    def describe(cls, plan: RunPlan, obj: RawObject, *, params: Mapping[str, str] | None = None,
                 report_id: str | None = None, job: str | None = None,
                 exported_at: datetime | None = None) -> RawManifest:
        """The manifest of ``obj``, downloaded by the run ``plan`` (``exported_at``: when; default its start)."""
        return cls(
            vendor=plan.export.vendor_name, export=plan.export.name, dataset=obj.dataset, period=plan.period,
            window=plan.window, request=plan.export, params=dict(params or {}), key=obj.key,
            content_type=obj.content_type, bytes=obj.bytes, sha256=obj.sha256, records=obj.records,
            report_id=report_id, job=job, execution_id=plan.execution_id,
            exported_at=exported_at or plan.started_at,
        )

    @property
    def raw_object(self) -> RawObject:
        """The raw object as the run's payloads name it."""
        return RawObject(dataset=self.dataset, key=self.key, bytes=self.bytes, sha256=self.sha256,
                         content_type=self.content_type, records=self.records)

    def to_json(self) -> builtins.bytes:
        return self.model_dump_json(indent=1).encode()

    @classmethod
    def from_json(cls, data: builtins.bytes | str) -> RawManifest:
        """Raises ``pydantic.ValidationError`` (a ``ValueError``) when ``data`` is not a manifest."""
        return cls.model_validate(json.loads(data))

