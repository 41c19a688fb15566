"""Real failures through the synthesized state machine: crashes, hangs, stops, timeouts, odd answers, full accounts.

Every fault comes from the environment's one FaultPlan; time is the test's virtual clock, so what takes
hours for a user takes no real time here and gives the same result on a loaded machine.
"""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pyarrow.parquet as pq
import pytest

from report_exporter import wiring
from report_exporter.adapters.http_client import build_client
from report_exporter.aws.ledger import DynamoLedger
from report_exporter.clock import VirtualClock
from report_exporter.local.faults import Answer, Crash, FaultPlan, Hang, Stop, TimeOut
from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import ParticleExport
from report_exporter.ports import RunStatus
from report_exporter.vendors.particle.simulator import ParticleSimulator
from tests.local.conftest import PERIOD, START

EXPORT = ParticleExport(name="particle-demo", secret_name="report-exporter/particle-demo")
KEY = f"curated/particle_data_operations/export=particle-demo/period={PERIOD}/data.parquet"
FIRST = f"particle-demo-{PERIOD}"
MONTHS = ["2026-10", "2026-09", "2026-08", "2026-07"]


def crash_every_attempt(state: str, execution: str, effect: str = "", attempts: int = 4) -> list[Crash]:
    """The first try and every Lambda.Unknown retry of ``state`` die (the definition retries it 3 times)."""
    return [Crash(state=state, effect=effect, invocation=n, execution=execution) for n in range(1, attempts + 1)]


def parquet_rows(env: LocalEnvironment) -> int:
    return pq.read_metadata(io.BytesIO(env.read("curated", KEY))).num_rows


def slots(env: LocalEnvironment) -> dict[str, object]:
    return DynamoLedger(env.env["LEDGER_TABLE"]).slots(EXPORT.account_key())


def virtual(env: LocalEnvironment) -> VirtualClock:
    assert isinstance(env.clock, VirtualClock)
    return env.clock


# Crashes and timeouts of a Lambda.

def test_a_crash_in_write_parquet_is_retried_and_the_month_published_once(local_env: LocalEnvironment,
                                                                          faults: FaultPlan) -> None:
    # Given WriteParquet's process dies just before it publishes the staged file
    faults.add(Crash(state="WriteParquet", effect="s3:CopyObject"))
    with ParticleSimulator(pending_polls=0, rows=250) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    # Then Step Functions saw what AWS reports for a dead function, retried, and the month is published
    assert result.succeeded, result.cause
    (error, cause), = result.task_errors("WriteParquet")
    assert error == "Lambda.Unknown" and "Runtime exited" in cause
    assert parquet_rows(local_env) == 250 and local_env.ledger_item(EXPORT.name, PERIOD)["rows"] == 250
    assert [k for k in local_env.keys("curated") if "_staging" in k] == []


def test_a_crash_after_the_vendor_accepted_a_request_is_not_retried_and_is_recorded(
        local_env: LocalEnvironment, faults: FaultPlan) -> None:
    # Given RequestReport dies right after the vendor created the report (before the ledger knows its id)
    faults.add(Crash(state="RequestReport", effect="dynamodb:UpdateItem", nth=2))
    with ParticleSimulator(pending_polls=0) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        created = len(sim.reports)
    # Then it is not retried (a second create could follow): the run fails, recorded, with its slot freed
    assert result.error == "Lambda.Unknown" and created == 1
    assert local_env.ledger_item(EXPORT.name, PERIOD)["status"] == RunStatus.FAILED
    assert slots(local_env) == {}


def test_a_vendor_that_hangs_longer_than_the_function_then_answers_ends_in_success(
        local_env: LocalEnvironment, faults: FaultPlan) -> None:
    # Given the second status poll hangs for ten minutes (CheckReport may run 60 s)
    faults.add(Hang(path="/usage_reports/", method="GET", seconds=600, nth=2))
    with ParticleSimulator(pending_polls=2, rows=30) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    # Then the call gave up within the function's time (a retried transport error, not a Lambda timeout)
    assert result.succeeded, result.cause
    (error, cause), = result.task_errors("CheckReport")
    assert error == "VendorUnavailableError" and "timed out" in cause
    assert faults.fired == [f"hang GET {p} (#2)" for p in ["/v1/user/usage_reports/1001"]]


def test_a_call_longer_than_the_function_times_the_lambda_out_as_aws_would(
        local_env: LocalEnvironment, faults: FaultPlan, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given vendor calls that are not bounded by the invocation's remaining time (60 s read timeout)
    monkeypatch.setattr(wiring, "build_client", lambda base, *, transport=None, remaining=None:
                        build_client(base, transport=transport))
    faults.add(Hang(path="/usage_reports/", method="GET", seconds=600, nth=2))
    with ParticleSimulator(pending_polls=2, rows=30) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    # Then CheckReport overran its 60 s and Step Functions saw Lambda.Unknown, which it retries
    (error, cause), = result.task_errors("CheckReport")
    assert error == "Lambda.Unknown" and "Task timed out after 60.00 seconds" in cause
    assert result.succeeded, result.cause


def test_an_html_page_instead_of_json_is_retried(local_env: LocalEnvironment, faults: FaultPlan) -> None:
    faults.add(Answer(path="/usage_reports/", method="GET", status=200, body=b"<html>down for maintenance</html>"))
    with ParticleSimulator(pending_polls=1, rows=12) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    assert result.succeeded, result.cause
    (error, cause), = result.task_errors("CheckReport")
    assert error == "VendorUnavailableError" and "expected JSON" in cause and "text/html" in cause


# The account's cap of outstanding reports.

def test_particles_cap_refusal_waits_for_a_slot_then_succeeds(local_env: LocalEnvironment) -> None:
    # Given someone else holds the account's three report slots for three minutes
    with ParticleSimulator(pending_polls=0, rows=20, foreign_pending=3,
                           foreign_until=START + timedelta(minutes=3)) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        creates = sim.calls("POST", "usage_reports")
    # Then the refusals are waited out (not failed as an ordinary throttle) and the run succeeds
    assert result.succeeded, result.cause
    refusals = result.task_errors("RequestReport")
    assert refusals and {e for e, _ in refusals} == {"OutstandingReportCapError"}
    assert "already has 3 outstanding report requests" in refusals[0][1]
    assert len(creates) == len(refusals) + 1 < 10


def test_a_full_account_fails_clearly_at_the_deadline(local_env: LocalEnvironment) -> None:
    export = EXPORT.model_copy(update={"report_deadline_minutes": 20})
    with ParticleSimulator(foreign_pending=3) as sim:
        result = local_env.run(export, period=PERIOD, simulator=sim)
    assert result.error == "ReportTimedOutError"
    assert "no report slot" in (result.cause or "") and "became free before the deadline" in (result.cause or "")


def test_stopped_executions_give_their_slots_back(local_env: LocalEnvironment, faults: FaultPlan) -> None:
    # Given three backfills stopped by hand while their reports are pending
    for month in MONTHS[:3]:
        faults.add(Stop(state="CheckReport", invocation=1, execution=f"particle-demo-{month}"))
    with ParticleSimulator(pending_polls=50, ready_after=300, rows=10) as sim:
        stopped = [local_env.run(EXPORT, period=m, simulator=sim) for m in MONTHS[:3]]
        # Then EndRun released their slots and leases at once
        assert [r.status for r in stopped] == ["ABORTED"] * 3
        assert all(r.ended and r.ended[0]["ledger_updated"] for r in stopped)
        assert slots(local_env) == {}
        assert local_env.ledger_item(EXPORT.name, MONTHS[0])["status"] == RunStatus.FAILED
        # And a new run does not wait for a slot (once the vendor has finished the abandoned reports)
        virtual(local_env).advance(600)
        sim.pending_polls = 0
        fresh = local_env.run(EXPORT, period=MONTHS[3], simulator=sim)
    assert fresh.succeeded, fresh.cause
    assert fresh.task_errors("RequestReport") == []


def test_slots_of_executions_that_died_unrecorded_expire_with_their_run(local_env: LocalEnvironment,
                                                                         faults: FaultPlan) -> None:
    # Given three executions stopped while pending, and the clean-up rule failing for each of them
    for month in MONTHS[:3]:
        name = f"particle-demo-{month}"
        faults.add(Stop(state="CheckReport", invocation=1, execution=name), Crash(state="EndRun", execution=name))
    with ParticleSimulator(pending_polls=50, ready_after=300, rows=10) as sim:
        for month in MONTHS[:3]:
            local_env.run(EXPORT, period=month, simulator=sim)
        assert len(slots(local_env)) == 3
        # When a healthy run starts a week later
        virtual(local_env).advance(7 * 86_400)
        sim.pending_polls = 0
        fresh = local_env.run(EXPORT, period=MONTHS[3], simulator=sim)
    # Then the dead runs' slots no longer count: no waiting, no manual DynamoDB edit
    assert fresh.succeeded, fresh.cause
    assert fresh.task_errors("RequestReport") == []


def test_the_state_machines_own_timeout_is_cleaned_up(local_env: LocalEnvironment, faults: FaultPlan) -> None:
    faults.add(TimeOut(after=timedelta(minutes=10)))
    with ParticleSimulator(never_ready=True) as sim:
        result = local_env.run(EXPORT, period=PERIOD, simulator=sim)
    assert result.status == "TIMED_OUT"
    assert result.elapsed == timedelta(minutes=10)
    item = local_env.ledger_item(EXPORT.name, PERIOD)
    assert item["status"] == RunStatus.FAILED and str(item["last_error"]).startswith("ExecutionTimedOut")
    assert slots(local_env) == {}


# Several executions of one month.

def test_a_rerun_after_a_publisher_died_unrecorded_publishes_the_rows_not_nothing(
        local_env: LocalEnvironment, faults: FaultPlan) -> None:
    # Given a run whose WriteParquet dies on every attempt after taking the publish lease, whose RecordFailure
    # dies too, and whose clean-up rule fails: nothing tells the ledger it is gone
    faults.add(*crash_every_attempt("WriteParquet", FIRST, "s3:CopyObject"),
               *crash_every_attempt("RecordFailure", FIRST), Crash(state="EndRun", execution=FIRST))
    with ParticleSimulator(pending_polls=0, rows=90) as sim:
        dead = local_env.run(EXPORT, period=PERIOD, simulator=sim)
        assert dead.status == "FAILED"
        assert local_env.ledger_item(EXPORT.name, PERIOD)["status"] == RunStatus.PUBLISHING
        # When the month is rerun at once
        rerun = local_env.run(EXPORT, period=PERIOD, simulator=sim, timeout=300)
        downloads = sum(r.downloads for r in sim.reports.values())
    # Then the rerun waits for the dead publisher's lease, takes over and publishes the report's 90 rows
    assert rerun.succeeded, rerun.cause
    assert rerun.output and rerun.output["curated"]["rows"] == 90 and rerun.output["curated"]["published"]
    assert {e for e, _ in rerun.task_errors("WriteParquet")} == {"ReportBusyError"}
    assert parquet_rows(local_env) == 90 and downloads == 1
    assert local_env.ledger_item(EXPORT.name, PERIOD)["status"] == RunStatus.PUBLISHED


def test_a_failing_adopter_leaves_the_owners_run_alone(local_env: LocalEnvironment, faults: FaultPlan) -> None:
    # Given two executions of the same month; the second (the adopter) dies on every CheckReport
    second = f"{FIRST}-2"
    faults.add(*crash_every_attempt("CheckReport", second))
    with ParticleSimulator(pending_polls=6, rows=40) as sim:
        # (time is held still until the second starts, so the first is the owner whatever the thread timing)
        clock = virtual(local_env)
        clock.join("test")
        _, first = local_env.start(EXPORT, period=PERIOD, simulator=sim)
        give_up = time.monotonic() + 60
        while not local_env.ledger_item(EXPORT.name, PERIOD).get("job") and time.monotonic() < give_up:
            time.sleep(0.01)
        _, other = local_env.start(EXPORT, period=PERIOD, simulator=sim)
        clock.leave("test")
        owner, adopter = (local_env.wait(EXPORT.name, PERIOD, arn) for arn in (first, other))
        created = len(sim.reports)
    # Then the adopter fails and says so, but the owner's run goes on and publishes its one report
    assert adopter.status == "FAILED" and owner.succeeded, owner.cause
    (recorded,) = adopter.task_outputs("RecordFailure")
    assert recorded["ledger_updated"] is False
    item = local_env.ledger_item(EXPORT.name, PERIOD)
    assert created == 1
    assert item["status"] == RunStatus.PUBLISHED and item["published_job"] == item["report_id"] == item["job"]
    assert second in str(item["last_failure"])
    # And the month holds the owner's rows
    assert parquet_rows(local_env) == 40
