"""PlanRun: which month a run exports and what it refuses."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from report_exporter.errors import InvalidExportError
from report_exporter.logic.plan_run import plan_run
from report_exporter.models.exports import ParticleExport
from report_exporter.models.payloads import PlanInput, StartInput

EXPORT = ParticleExport(name="particle-demo", secret_name="s")
NOW = datetime(2026, 11, 3, 6, 0, 12, tzinfo=UTC)


def plan(start: StartInput, now: datetime = NOW):  # type: ignore[no-untyped-def]
    return plan_run(PlanInput(start=start, execution_id="arn:aws:states:us-east-1:1:execution:m:x"), now=now).plan


def test_plan_run_takes_the_month_before_the_scheduled_time() -> None:
    # Given a schedule firing on 3 November
    out = plan(StartInput(export=EXPORT, scheduled_time=datetime(2026, 11, 3, 6, 0, tzinfo=UTC)))
    # Then the run exports October, end exclusive, with the export's deadline
    assert out.period == "2026-10"
    assert (out.window.start.isoformat(), out.window.end.isoformat()) == (
        "2026-10-01T00:00:00+00:00", "2026-11-01T00:00:00+00:00")
    assert out.deadline == NOW + timedelta(minutes=360)


def test_plan_run_uses_the_exports_time_zone_for_the_month() -> None:
    export = EXPORT.model_copy(update={"timezone": "America/New_York"})
    out = plan(StartInput(export=export, period="2026-10"))
    assert out.window.start.isoformat() == "2026-10-01T00:00:00-04:00"
    assert out.window.end.isoformat() == "2026-11-01T00:00:00-04:00"


def test_plan_run_refuses_a_month_that_has_not_ended() -> None:
    with pytest.raises(InvalidExportError, match="2026-11: the month has not ended yet"):
        plan(StartInput(export=EXPORT, period="2026-11"))


def test_plan_run_refuses_particle_months_older_than_six_months() -> None:
    with pytest.raises(InvalidExportError, match="only cover the last 6 months"):
        plan(StartInput(export=EXPORT, period="2026-01"))


def test_plan_run_backfills_an_explicit_period() -> None:
    assert plan(StartInput(export=EXPORT, period="2026-07")).period == "2026-07"


def test_plan_run_without_a_period_or_schedule_takes_the_month_before_the_execution_started() -> None:
    event = PlanInput(start=StartInput(export=EXPORT), execution_id="arn:aws:states:us-east-1:1:execution:m:x",
                      started_at=datetime(2026, 9, 2, 23, 0, tzinfo=UTC))
    out = plan_run(event, now=NOW).plan
    assert (out.period, out.execution_id, out.started_at) == ("2026-08", "arn:aws:states:us-east-1:1:execution:m:x",
                                                              NOW)


def test_plan_run_with_nothing_to_go_by_takes_the_month_before_now() -> None:
    assert plan(StartInput(export=EXPORT)).period == "2026-10"


def test_plan_run_accepts_a_month_that_ended_this_very_moment() -> None:
    assert plan(StartInput(export=EXPORT, period="2026-10"), now=datetime(2026, 11, 1, tzinfo=UTC)).period == "2026-10"


def test_plan_run_says_when_an_unfinished_month_ends() -> None:
    with pytest.raises(InvalidExportError) as caught:
        plan(StartInput(export=EXPORT, period="2026-11"))
    assert str(caught.value) == ("export 'particle-demo' period 2026-11: the month has not ended yet "
                                 "(it ends 2026-12-01T00:00:00+00:00); export it after that")
