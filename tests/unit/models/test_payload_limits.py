"""Every valid config fits in Step Functions' 256 KiB state; an export that would not is refused by name."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from report_exporter.errors import InvalidExportError
from report_exporter.models.exports import parse_exports
from report_exporter.models.exports.base import MAX_EXPORT_BYTES
from report_exporter.models.payloads import (
    CuratedObject,
    CuratedReport,
    FailureInput,
    JobStatus,
    RawObject,
    RawReport,
    ReportJob,
    StartInput,
)
from report_exporter.vendors.senet.export import MAX_APPLICATIONS
from tests.fakes import plan_for

STEP_FUNCTIONS_LIMIT = 256 * 1024
CAUSE_LIMIT = 32_768  # Step Functions' own limit on an error's cause


def particle(devices: int) -> dict[str, object]:
    return {"name": "particle-fleet", "vendor": "particle", "secret_name": "s/p",
            "devices": [f"{i:024x}" for i in range(devices)]}


def test_an_export_too_large_for_the_state_is_refused_naming_it_and_what_to_do() -> None:
    # Given a Particle export listing 9,300 devices (today's configs accept it; Step Functions would not)
    with pytest.raises(InvalidExportError, match=r"export 'particle-fleet'.*at most 65,536 fit in the state") as caught:
        parse_exports({"exports": [particle(9300)]})
    assert "filter Particle devices by product" in str(caught.value)


def test_the_largest_valid_export_still_leaves_every_state_within_the_limit() -> None:
    # Given the largest Particle export that validates (as many devices as fit the bound)
    count = 1
    while True:
        try:
            parse_exports({"exports": [particle(count * 2)]})
        except InvalidExportError:
            break
        count *= 2
    low, high = count, count * 2
    while high - low > 1:
        mid = (low + high) // 2
        try:
            parse_exports({"exports": [particle(mid)]})
            low = mid
        except InvalidExportError:
            high = mid
    export = parse_exports({"exports": [particle(low)]}).exports[0]
    assert len(export.model_dump_json()) <= MAX_EXPORT_BYTES
    # When the biggest state of a run is built: the plan, a job, every raw and curated object a run can
    # produce (Senet: one summary and one details file per application) and an error cause at its limit
    plan = plan_for(export, now=datetime(2026, 11, 3, 6, tzinfo=UTC))
    key = "raw/senet/" + "x" * 200
    raw = RawReport(objects=tuple(RawObject(dataset="senet_device_month", key=f"{key}-{i}", bytes=2**40,
                                            sha256="0" * 64, content_type="text/csv", records=2**31)
                                  for i in range(MAX_APPLICATIONS + 1)))
    curated = CuratedReport(objects=tuple(CuratedObject(dataset="d" * 40, table="d" * 40, key="c" * 200, rows=2**40,
                                                        bytes=2**40) for _ in range(2)), rows=2**41)
    job = ReportJob(job="j" * 100, report_id="j" * 100, status=JobStatus.READY, requested_at=plan.started_at)
    state = {"plan": plan.model_dump(mode="json"), "job": job.model_dump(mode="json"),
             "raw": raw.model_dump(mode="json"), "curated": curated.model_dump(mode="json"),
             "error": {"Error": "E" * 256, "Cause": "c" * CAUSE_LIMIT}}
    payload = json.dumps(FailureInput.model_validate({"state": state, "execution_id": "e" * 200}).model_dump(
        mode="json"))
    start = StartInput(export=export).model_dump_json()
    # Then each stays well under Step Functions' 256 KiB
    assert len(start) < STEP_FUNCTIONS_LIMIT / 3
    assert len(json.dumps(state)) < STEP_FUNCTIONS_LIMIT and len(payload) < STEP_FUNCTIONS_LIMIT


def test_particle_products_reports_are_refused_until_they_are_supported() -> None:
    with pytest.raises(InvalidExportError, match="'products' reports are not supported yet"):
        parse_exports({"exports": [{**particle(0), "report_type": "products"}]})


def test_particle_device_filters_must_be_device_ids() -> None:
    with pytest.raises(InvalidExportError, match=r"devices\.0: String should match pattern"):
        parse_exports({"exports": [{**particle(0), "devices": ["my tracker"]}]})
