"""Every file in events/ validates against the model of its state."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from report_exporter.models.payloads import (
    CheckInput,
    DownloadInput,
    EndRunInput,
    FailureInput,
    ParquetInput,
    PlanInput,
    RequestInput,
    StartInput,
)

EVENTS_DIR = Path(__file__).resolve().parents[2] / "events"
EVENT_MODELS: dict[str, type[BaseModel]] = {
    "state_machine": StartInput,
    "plan_run": PlanInput,
    "request_report": RequestInput,
    "check_report": CheckInput,
    "download_report": DownloadInput,
    "write_parquet": ParquetInput,
    "record_failure": FailureInput,
    "end_run": EndRunInput,
}
EVENT_FILES = sorted(EVENTS_DIR.glob("*/*.json"))


def test_every_state_has_sample_events() -> None:
    assert {p.parent.name for p in EVENT_FILES} == set(EVENT_MODELS)


@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_sample_event_is_valid(path: Path) -> None:
    EVENT_MODELS[path.parent.name].model_validate_json(path.read_text())
