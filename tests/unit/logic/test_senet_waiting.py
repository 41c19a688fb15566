"""Senet's wait for the month's data, through the steps' logic: RequestReport, then CheckReport until the deadline.

Moved from tests/unit/adapters/test_senet.py: these exercise ``logic`` (plan_run, request_report, check_report)
with the Senet adapter, so they follow the logic's signatures.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from report_exporter.adapters.http_client import build_client
from report_exporter.clock import VirtualClock
from report_exporter.errors import ReportNotAvailableError
from report_exporter.logic.check_report import check_report
from report_exporter.logic.plan_run import plan_run
from report_exporter.logic.request_report import request_report
from report_exporter.models.exports import SenetExport
from report_exporter.models.payloads import CheckInput, PlanInput, RequestInput, StartInput
from report_exporter.vendors.base import Cadence
from report_exporter.vendors.senet.adapter import CADENCE, SenetAdapter
from report_exporter.vendors.senet.simulator import SenetSimulator
from tests.fakes import RecordingLedger, plan_for

EUIS = ("00250C0000010001", "00250C0000010002")
EXPORT = SenetExport(name="senet-fleet", secret_name="s/senet", application_euis=EUIS)
NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


def sim_adapter(sim: SenetSimulator) -> SenetAdapter:
    return SenetAdapter(EXPORT, build_client("https://api.senet.test", transport=sim.transport()),
                        {"api_key": SecretStr(sim.api_key)}, VirtualClock(NOW))


def test_senet_check_report_waits_slowly_and_raises_report_not_available_past_the_deadline() -> None:
    # Given data that never appears, and a 3-hour deadline
    sim = SenetSimulator(euis=EUIS, unavailable_probes=10_000)
    senet = sim_adapter(sim)
    plan = plan_for(EXPORT, "2026-10", now=NOW, deadline_minutes=180)
    ledger = RecordingLedger()
    job = request_report(RequestInput(plan=plan), adapter=senet, ledger=ledger, now=NOW)
    waits = [job.wait_seconds]
    now = NOW
    # When the state machine loops RequestReport -> Wait -> CheckReport until it gives up
    with pytest.raises(ReportNotAvailableError) as caught:
        while True:
            now += timedelta(seconds=job.wait_seconds)
            job = check_report(CheckInput(plan=plan, job=job), adapter=senet, ledger=ledger, now=now)
            waits.append(job.wait_seconds)
    # Then it probed after 15, 30, 60, 60 min and at the deadline, and the error names export, period and
    # what it was waiting for
    assert Cadence(steps=(900, 1800, 3600)) == CADENCE
    assert waits == [900, 1800, 3600, 3600, 900]
    assert sum(waits) == 180 * 60
    assert "senet-fleet" in str(caught.value) and "2026-10" in str(caught.value)
    assert "is still not yet available after 5 polls over 180 min" in str(caught.value)


def test_senet_plan_run_accepts_the_previous_month() -> None:
    # Given a scheduled run on 3 November
    start = StartInput(export=EXPORT, scheduled_time=NOW)
    # When planned / Then October is the period and its window is the calendar month
    plan = plan_run(PlanInput(start=start, execution_id="arn:x:senet-fleet-2026-10"), now=NOW).plan
    assert plan.period == "2026-10"
