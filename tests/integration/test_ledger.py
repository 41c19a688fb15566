"""The job ledger's lifecycle and leases, on DynamoDB (moto): who may move a month on, who may fail it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from report_exporter import limits
from report_exporter.adapters.base import Cadence, RequestResult
from report_exporter.aws.ledger import DynamoLedger, RunStatus
from report_exporter.errors import (
    OutstandingReportCapError,
    ReportBusyError,
    ReportSupersededError,
    ReportTimedOutError,
    RunEndedError,
)
from report_exporter.logic.request_report import request_report
from report_exporter.models.exports import ParticleExport
from report_exporter.models.payloads import CuratedObject, JobStatus, RawObject, RequestInput, RunPlan
from tests.fakes import plan_for
from tests.integration.conftest import Buckets

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
EXPORT = ParticleExport(name="particle-fleet", secret_name="s")
RAW = [RawObject(dataset="particle_data_operations", key="raw/particle/particle-fleet/2026-10/report-1001.csv",
                 bytes=10, sha256="0" * 64, content_type="text/csv")]
CURATED = [CuratedObject(dataset="particle_data_operations", table="particle_data_operations",
                         key="curated/particle_data_operations/export=particle-fleet/period=2026-10/data.parquet",
                         rows=42, bytes=900)]


def run(name: str, period: str = "2026-10", *, now: datetime = NOW) -> RunPlan:
    plan = plan_for(EXPORT, period, now=now)
    return plan.model_copy(update={"execution_id": f"arn:aws:states:us-east-1:123456789012:execution:m:{name}"})


@pytest.fixture
def ledger(aws: Buckets) -> DynamoLedger:
    return DynamoLedger(aws.ledger)


def item(ledger: DynamoLedger, period: str = "2026-10") -> dict[str, object]:
    return ledger.get(EXPORT.name, period) or {}


def requested(ledger: DynamoLedger, plan: RunPlan, job: str = "1001", *, now: datetime = NOW) -> None:
    assert not ledger.claim(plan, now=now).adopt
    ledger.requested(plan, job=job, report_id=job, ready=False, now=now)


def test_an_empty_table_name_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="LEDGER_TABLE"):
        DynamoLedger("")


def test_a_second_execution_waits_while_the_first_requests_then_adopts_its_report(ledger: DynamoLedger) -> None:
    owner, other = run("a"), run("b")
    assert ledger.claim(owner, now=NOW).adopt is False
    with pytest.raises(ReportBusyError, match="execution a is requesting"):
        ledger.claim(other, now=NOW + timedelta(seconds=30))
    ledger.requested(owner, job="1001", report_id="1001", ready=False, now=NOW)
    claim = ledger.claim(other, now=NOW + timedelta(seconds=60))
    assert (claim.adopt, claim.job, claim.report_id) == (True, "1001", "1001")
    assert item(ledger)["lease_owner"] == owner.execution_id


def test_a_requester_that_died_is_taken_over_once_its_lease_expires(ledger: DynamoLedger) -> None:
    owner, other = run("a"), run("b")
    ledger.claim(owner, now=NOW)
    later = NOW + limits.REQUEST_LEASE + timedelta(seconds=1)
    assert ledger.claim(other, now=later).adopt is False
    assert item(ledger)["lease_owner"] == other.execution_id
    # The dead requester's late answer must not overwrite the new owner's claim.
    with pytest.raises(ReportBusyError):
        ledger.requested(owner, job="1001", report_id="1001", ready=False, now=later)


def test_a_failing_adopter_leaves_the_owners_run_alone(ledger: DynamoLedger) -> None:
    owner, adopter = run("a"), run("b")
    requested(ledger, owner)
    assert ledger.claim(adopter, now=NOW).adopt
    # When the adopter fails
    updated = ledger.failed(export=EXPORT.name, period="2026-10", execution=adopter.execution_id,
                            error="VendorAuthError", message="refused", now=NOW)
    # Then the owner's item stays PENDING with its report, and the failure is only noted
    current = item(ledger)
    assert updated is False
    assert current["status"] == RunStatus.PENDING and current["job"] == "1001"
    assert "VendorAuthError" in str(current["last_failure"]) and "last_error" not in current
    # And a third run still adopts the owner's report instead of requesting a second one
    assert ledger.claim(run("c"), now=NOW).adopt


def test_the_owners_failure_lets_the_next_run_request_again(ledger: DynamoLedger) -> None:
    owner = run("a")
    requested(ledger, owner)
    assert ledger.failed(export=EXPORT.name, period="2026-10", execution=owner.execution_id,
                         error="ReportFailedError", message="failed at the vendor", now=NOW)
    assert item(ledger)["status"] == RunStatus.FAILED
    assert str(item(ledger)["last_error"]).startswith("ReportFailedError")
    assert ledger.claim(run("b"), now=NOW).adopt is False


def test_an_expired_pending_lease_lets_an_adopter_fail_the_month(ledger: DynamoLedger) -> None:
    owner, adopter = run("a"), run("b", now=NOW + timedelta(hours=1))
    requested(ledger, owner)
    past_owner = owner.deadline + limits.LEASE_GRACE + timedelta(seconds=1)
    assert ledger.failed(export=EXPORT.name, period="2026-10", execution=adopter.execution_id,
                         error="ReportTimedOutError", message="still pending", now=past_owner)
    assert item(ledger)["status"] == RunStatus.FAILED


def test_download_once_the_second_execution_reuses_the_raw_file(ledger: DynamoLedger) -> None:
    owner, adopter = run("a"), run("b")
    requested(ledger, owner)
    assert ledger.begin_download(owner, job="1001", now=NOW) is None
    with pytest.raises(ReportBusyError, match="execution a is downloading"):
        ledger.begin_download(adopter, job="1001", now=NOW)
    assert ledger.downloaded(owner, job="1001", objects=RAW, now=NOW) == RAW
    assert ledger.begin_download(adopter, job="1001", now=NOW) == RAW
    assert item(ledger)["status"] == RunStatus.DOWNLOADED


def test_a_dead_downloader_is_taken_over_after_its_lease(ledger: DynamoLedger) -> None:
    owner, adopter = run("a"), run("b")
    requested(ledger, owner)
    ledger.begin_download(owner, job="1001", now=NOW)
    later = NOW + limits.DOWNLOAD_LEASE + timedelta(seconds=1)
    assert ledger.begin_download(adopter, job="1001", now=later) is None
    assert item(ledger)["lease_owner"] == adopter.execution_id
    # The dead one's late record must not replace the new holder's lease.
    with pytest.raises(ReportBusyError):
        ledger.downloaded(owner, job="1001", objects=RAW, now=later)


def test_the_download_cursor_is_kept_by_the_lease_holder_and_followed_by_whoever_takes_it_over(
        ledger: DynamoLedger) -> None:
    # Given a download under way that kept one part
    owner, adopter = run("a"), run("b")
    requested(ledger, owner)
    ledger.begin_download(owner, job="1001", now=NOW)
    ledger.save_download_cursor(owner, job="1001", cursor={"upload_id": "u1", "bytes": 8})
    # Then a retry of the same execution finds it, a cursor is never handed to another report
    assert ledger.download_cursor(owner, job="1001") == {"upload_id": "u1", "bytes": 8, "job": "1001"}
    assert ledger.download_cursor(owner, job="2002") is None
    # And another execution may neither overwrite nor drop it while the lease lives
    with pytest.raises(ReportBusyError, match="taken over"):
        ledger.save_download_cursor(adopter, job="1001", cursor={"upload_id": "u2"})
    ledger.clear_download_cursor(adopter, job="1001")
    assert ledger.download_cursor(adopter, job="1001") == {"upload_id": "u1", "bytes": 8, "job": "1001"}
    # When the owner dies and the lease expires, the one taking over continues from it
    later = NOW + limits.DOWNLOAD_LEASE + timedelta(seconds=1)
    assert ledger.begin_download(adopter, job="1001", now=later) is None
    assert ledger.download_cursor(adopter, job="1001") == {"upload_id": "u1", "bytes": 8, "job": "1001"}
    with pytest.raises(ReportBusyError):
        ledger.save_download_cursor(owner, job="1001", cursor={"upload_id": "late"})
    # And once the raw object is recorded, the cursor is gone
    ledger.downloaded(adopter, job="1001", objects=RAW, now=later)
    assert "download_cursor" not in item(ledger)


def test_a_new_request_starts_without_the_old_reports_cursor(ledger: DynamoLedger) -> None:
    owner = run("a")
    requested(ledger, owner)
    ledger.begin_download(owner, job="1001", now=NOW)
    ledger.save_download_cursor(owner, job="1001", cursor={"upload_id": "u1"})
    ledger.failed(export=EXPORT.name, period="2026-10", execution=owner.execution_id, error="E", message="m",
                  now=NOW)
    requested(ledger, run("b"), job="2002")
    assert "download_cursor" not in item(ledger)


def downloaded(ledger: DynamoLedger, plan: RunPlan) -> None:
    requested(ledger, plan)
    ledger.begin_download(plan, job="1001", now=NOW)
    ledger.downloaded(plan, job="1001", objects=RAW, now=NOW)


def test_a_publish_in_progress_makes_the_other_execution_wait_not_succeed_empty(ledger: DynamoLedger) -> None:
    owner, adopter = run("a"), run("b")
    downloaded(ledger, owner)
    assert ledger.begin_publish(owner, job="1001", now=NOW) is None
    # The second execution is told to wait (retried), never handed an empty "already published" list.
    with pytest.raises(ReportBusyError, match="execution a is publishing"):
        ledger.begin_publish(adopter, job="1001", now=NOW)
    ledger.published(owner, job="1001", objects=CURATED, now=NOW)
    assert ledger.begin_publish(adopter, job="1001", now=NOW) == CURATED
    assert item(ledger)["status"] == RunStatus.PUBLISHED and item(ledger)["rows"] == 42


def test_when_the_publisher_fails_the_waiting_execution_publishes(ledger: DynamoLedger) -> None:
    owner, adopter = run("a"), run("b")
    downloaded(ledger, owner)
    ledger.begin_publish(owner, job="1001", now=NOW)
    assert ledger.failed(export=EXPORT.name, period="2026-10", execution=owner.execution_id,
                         error="InvalidReportError", message="bad row", now=NOW)
    assert ledger.begin_publish(adopter, job="1001", now=NOW) is None
    assert item(ledger)["lease_owner"] == adopter.execution_id


def test_a_publisher_that_died_is_taken_over_after_its_lease(ledger: DynamoLedger) -> None:
    owner, rerun = run("a"), run("b")
    downloaded(ledger, owner)
    ledger.begin_publish(owner, job="1001", now=NOW)
    with pytest.raises(ReportBusyError):
        ledger.begin_publish(rerun, job="1001", now=NOW + limits.PUBLISH_LEASE - timedelta(seconds=1))
    assert ledger.begin_publish(rerun, job="1001", now=NOW + limits.PUBLISH_LEASE + timedelta(seconds=1)) is None


def test_a_published_month_is_never_marked_failed(ledger: DynamoLedger) -> None:
    owner = run("a")
    downloaded(ledger, owner)
    ledger.begin_publish(owner, job="1001", now=NOW)
    ledger.published(owner, job="1001", objects=CURATED, now=NOW)
    for who in (owner, run("late")):
        assert not ledger.failed(export=EXPORT.name, period="2026-10", execution=who.execution_id,
                                 error="VendorUnavailableError", message="late", now=NOW)
    assert item(ledger)["status"] == RunStatus.PUBLISHED


def test_a_rerun_after_publishing_requests_afresh_and_old_followers_stop(ledger: DynamoLedger) -> None:
    owner = run("a")
    downloaded(ledger, owner)
    ledger.begin_publish(owner, job="1001", now=NOW)
    ledger.published(owner, job="1001", objects=CURATED, now=NOW)
    rerun = run("b")
    requested(ledger, rerun, job="1002")
    # A follower of the old report still gets the old result...
    assert ledger.begin_publish(run("c"), job="1001", now=NOW) == CURATED
    # ...but one that had not downloaded it yet stops instead of touching the new run.
    with pytest.raises(ReportSupersededError, match="replaced by a newer request"):
        ledger.begin_download(run("d"), job="999", now=NOW)


def test_end_run_only_releases_what_the_execution_still_holds(ledger: DynamoLedger) -> None:
    owner = run("a")
    requested(ledger, owner)
    ledger.failed(export=EXPORT.name, period="2026-10", execution=owner.execution_id, error="ReportFailedError",
                  message="failed at the vendor", now=NOW)
    # RecordFailure recorded it: EndRun's later "ExecutionFailed" must not replace the real error.
    assert not ledger.failed(export=EXPORT.name, period="2026-10", execution=owner.execution_id,
                             error="ExecutionFailed", message="ended", now=NOW, only_if_owner=True)
    assert str(item(ledger)["last_error"]).startswith("ReportFailedError")


def test_slots_hold_at_most_the_cap_and_expire_with_their_run(ledger: DynamoLedger) -> None:
    plans = [run(f"x{i}", p) for i, p in enumerate(["2026-10", "2026-09", "2026-08", "2026-07"])]
    for plan in plans[:3]:
        ledger.acquire_slot(plan, 3, now=NOW)
    ledger.acquire_slot(plans[0], 3, now=NOW)  # idempotent for the holder
    with pytest.raises(OutstandingReportCapError, match="already has 3 reports outstanding"):
        ledger.acquire_slot(plans[3], 3, now=NOW)
    ledger.release_slot(EXPORT.account_key(), plans[1].execution_id)
    ledger.release_slot(EXPORT.account_key(), plans[1].execution_id)  # idempotent
    ledger.acquire_slot(plans[3], 3, now=NOW)
    assert set(ledger.slots(EXPORT.account_key())) == {plans[i].execution_id for i in (0, 2, 3)}
    # Holders that never released (their execution died) stop counting once their run's deadline has passed.
    later = plans[0].deadline + limits.LEASE_GRACE + timedelta(seconds=1)
    newcomer = run("y", "2026-06", now=later)
    ledger.acquire_slot(newcomer, 3, now=later)
    assert set(ledger.slots(EXPORT.account_key())) == {newcomer.execution_id}


class _Vendor:
    """Counts create calls; RequestReport must not reach it once the run's deadline has passed."""

    cadence = Cadence(steps=(15, 30, 60))
    requests = 0

    def request(self, plan: RunPlan) -> RequestResult:
        self.requests += 1
        return RequestResult(status=JobStatus.PENDING, report_id="1001")


def test_no_report_is_requested_past_the_deadline_under_a_slot_that_expired_already(ledger: DynamoLedger) -> None:
    # Found by tests/property: PlanRun at 06:00 (deadline 12:00); the execution is delayed; RequestReport runs at
    # 12:02 = deadline + LEASE_GRACE. Its slot would expire as it was taken, so the vendor would hold a report
    # that no slot counts (the account's cap no longer bounds what is outstanding).
    plan = run("late")
    vendor = _Vendor()
    late = plan.deadline + limits.LEASE_GRACE
    with pytest.raises(ReportTimedOutError, match=r"no report slot .* became free before the deadline"):
        request_report(RequestInput(plan=plan), adapter=vendor, ledger=ledger, now=late)  # type: ignore[arg-type]
    assert vendor.requests == 0
    assert ledger.slots(EXPORT.account_key()) == {}
    # The claim it took is its own to fail (RecordFailure), so the next run requests afresh.
    assert item(ledger)["lease_owner"] == plan.execution_id


def test_a_late_lambda_of_an_ended_execution_takes_no_slot_and_no_lease(ledger: DynamoLedger) -> None:
    # Found by tests/property: a stop lands while RequestReport runs; EndRun finds nothing to free, and
    # AWS lets the Lambda finish. Its claim, slot and lease must not outlive the execution.
    late, other = run("late"), run("other")
    ledger.ended(export=EXPORT.name, period="2026-10", account=EXPORT.account_key(), execution=late.execution_id,
                 now=NOW)
    with pytest.raises(RunEndedError, match="has ended"):
        ledger.claim(late, now=NOW)
    with pytest.raises(RunEndedError, match="takes no report slot"):
        ledger.acquire_slot(late, 3, now=NOW)
    assert ledger.slots(EXPORT.account_key()) == {}
    # Another execution of the month is not affected
    requested(ledger, other)
    assert item(ledger)["lease_owner"] == other.execution_id


def test_an_execution_ended_between_its_claim_and_its_request_loses_the_claim(ledger: DynamoLedger) -> None:
    late = run("late")
    ledger.claim(late, now=NOW)
    ledger.acquire_slot(late, 3, now=NOW)
    # EndRun runs while the vendor call is in flight: the slot goes at once...
    ledger.ended(export=EXPORT.name, period="2026-10", account=EXPORT.account_key(), execution=late.execution_id,
                 now=NOW)
    assert ledger.slots(EXPORT.account_key()) == {}
    # ...and the late answer cannot take the pending lease
    with pytest.raises(RunEndedError):
        ledger.requested(late, job="1001", report_id="1001", ready=False, now=NOW)
    # The month's item does not hold the dead execution's claim: the next run requests afresh
    assert ledger.claim(run("next"), now=NOW + limits.REQUEST_LEASE + timedelta(seconds=1)).adopt is False


def test_a_runs_figures_and_cost_are_added_beside_the_lifecycle(ledger: DynamoLedger) -> None:
    # Given a month being requested
    owner = run("a")
    requested(ledger, owner)
    before = item(ledger)
    # When two invocations record their usage and figures
    from decimal import Decimal

    assert ledger.record_run(export=EXPORT.name, period="2026-10", add={"usage_lambda_requests": 2,
                             "cost_usd": Decimal("0.0001"), "waited_seconds": 15}, values={"cost_region": "eu-west-1"})
    assert ledger.record_run(export=EXPORT.name, period="2026-10", add={"usage_lambda_requests": 1,
                             "cost_usd": Decimal("0.00005"), "waited_seconds": 30, "usage_sns_publishes": 0},
                             values={"report_age_seconds": 45})
    # Then the counters add up, the figures are set, and the lifecycle (status, lease, version) is untouched
    after = item(ledger)
    assert (after["usage_lambda_requests"], after["cost_usd"], after["waited_seconds"]) == (3, 0.00015, 45)
    assert (after["cost_region"], after["report_age_seconds"]) == ("eu-west-1", 45)
    assert "usage_sns_publishes" not in after
    for key in ("status", "lease_owner", "lease_expires", "version"):
        assert after[key] == before[key], key
    # And nothing is recorded for a month without an item
    assert not ledger.record_run(export=EXPORT.name, period="2026-09", add={"cost_usd": Decimal(1)}, values={})
    assert ledger.get(EXPORT.name, "2026-09") is None


def test_a_new_request_starts_the_months_figures_afresh(ledger: DynamoLedger) -> None:
    from decimal import Decimal

    first = run("a")
    requested(ledger, first)
    ledger.polled(first, job="1001", polls=1, ready=True, now=NOW, link_expires_at=NOW + timedelta(days=7))
    assert item(ledger)["link_expires_at"] == (NOW + timedelta(days=7)).isoformat()
    ledger.record_run(export=EXPORT.name, period="2026-10", add={"usage_state_transitions": 18, "cost_usd":
                      Decimal("0.0005"), "vendor_error_VendorThrottledError": 1}, values={"run_seconds": 165})
    ledger.failed(export=EXPORT.name, period="2026-10", execution=first.execution_id, error="E", message="m", now=NOW)
    # When a rerun requests a new report
    assert not ledger.claim(run("b"), now=NOW + timedelta(hours=1)).adopt
    # Then the previous run's usage, cost, errors, figures and link are gone
    fresh = item(ledger)
    assert not [k for k in fresh if k.startswith(("usage_", "vendor_error_", "cost_", "link_", "ready_"))]
    assert "run_seconds" not in fresh
