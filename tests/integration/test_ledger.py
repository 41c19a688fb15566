"""The job ledger's lifecycle and leases, on DynamoDB (moto): who may move a month on, who may fail it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from report_exporter import limits
from report_exporter.adapters.base import RequestResult
from report_exporter.aws import clients
from report_exporter.aws.ledger import DynamoLedger
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
from report_exporter.ports import RunStatus
from report_exporter.vendors.base import Cadence
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


def at(minutes: int) -> datetime:
    return NOW + timedelta(minutes=minutes)


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def fields(ledger: DynamoLedger, *names: str) -> dict[str, object]:
    current = item(ledger)
    return {name: current.get(name) for name in names}


def test_the_month_item_tells_the_operator_where_a_run_is_at_every_step(ledger: DynamoLedger) -> None:
    owner = run("a")
    arn = owner.execution_id
    # Claimed: requesting, under a lease as long as RequestReport may run
    ledger.claim(owner, now=at(0))
    assert item(ledger) == {
        "pk": "EXPORT#particle-fleet", "sk": "PERIOD#2026-10", "status": "REQUESTING", "export": "particle-fleet",
        "period": "2026-10", "vendor": "particle", "claimed_at": at(0).isoformat(), "lease_owner": arn,
        "lease_expires": ms(at(0) + limits.REQUEST_LEASE), "updated_at": at(0).isoformat(), "version": 1}
    # Requested: pending, leased until the run's deadline (plus grace)
    ledger.requested(owner, job="1001", report_id="1001", ready=False, now=at(1))
    assert fields(ledger, "status", "job", "report_id", "requested_at", "requested_by", "polls", "lease_owner",
                  "lease_expires", "updated_at", "version") == {
        "status": "PENDING", "job": "1001", "report_id": "1001", "requested_at": at(1).isoformat(),
        "requested_by": arn, "polls": 0, "lease_owner": arn, "lease_expires": ms(owner.deadline + limits.LEASE_GRACE),
        "updated_at": at(1).isoformat(), "version": 2}
    # Polled: the count and the time of the last poll; ready once the vendor says so
    ledger.polled(owner, job="1001", polls=1, ready=False, now=at(2))
    assert fields(ledger, "status", "polls", "last_polled_at", "updated_at") == {
        "status": "PENDING", "polls": 1, "last_polled_at": at(2).isoformat(), "updated_at": at(2).isoformat()}
    ledger.polled(owner, job="1001", polls=2, ready=True, now=at(3))
    assert fields(ledger, "status", "polls", "last_polled_at") == {"status": "READY", "polls": 2,
                                                                   "last_polled_at": at(3).isoformat()}
    # Downloading, then downloaded: the raw objects and their size, each step under its own lease
    assert ledger.begin_download(owner, job="1001", now=at(4)) is None
    assert fields(ledger, "status", "lease_expires", "updated_at") == {
        "status": "DOWNLOADING", "lease_expires": ms(at(4) + limits.DOWNLOAD_LEASE), "updated_at": at(4).isoformat()}
    ledger.downloaded(owner, job="1001", objects=RAW, now=at(5))
    assert fields(ledger, "status", "raw_job", "raw_bytes", "downloaded_at", "lease_expires") == {
        "status": "DOWNLOADED", "raw_job": "1001", "raw_bytes": 10, "downloaded_at": at(5).isoformat(),
        "lease_expires": ms(at(5) + limits.PUBLISH_LEASE)}
    assert [RawObject.model_validate(o) for o in json.loads(str(item(ledger)["raw"]))] == RAW
    # Publishing, then published: rows, the curated objects, who published which report; the lease is gone
    assert ledger.begin_publish(owner, job="1001", now=at(6)) is None
    assert fields(ledger, "status", "lease_expires") == {"status": "PUBLISHING",
                                                         "lease_expires": ms(at(6) + limits.PUBLISH_LEASE)}
    outside = [CURATED[0].model_copy(update={"rows_outside_period": 2})]
    ledger.published(owner, job="1001", objects=outside, now=at(7))
    assert fields(ledger, "status", "published_at", "updated_at", "rows", "rows_outside_period", "published_by",
                  "published_job", "lease_owner", "lease_expires") == {
        "status": "PUBLISHED", "published_at": at(7).isoformat(), "updated_at": at(7).isoformat(), "rows": 42,
        "rows_outside_period": 2, "published_by": arn, "published_job": "1001", "lease_owner": None,
        "lease_expires": None}
    assert [CuratedObject.model_validate(o) for o in json.loads(str(item(ledger)["curated"]))] == outside
    # And what the next run of the month gets back for the same report is what was published
    assert ledger.begin_publish(run("b"), job="1001", now=at(8)) == outside


def test_a_new_request_after_publishing_starts_clean(ledger: DynamoLedger) -> None:
    owner = run("a")
    requested(ledger, owner)
    ledger.polled(owner, job="1001", polls=3, ready=False, now=NOW)
    assert item(ledger)["last_polled_at"] == NOW.isoformat()
    rerun = run("b")
    # When the month is requested again (the previous report failed)
    ledger.failed(export=EXPORT.name, period="2026-10", execution=owner.execution_id, error="E", message="m",
                  now=NOW)
    assert ledger.claim(rerun, now=at(10)).adopt is False
    # Then nothing of the previous report is left to be reused by mistake
    assert fields(ledger, "job", "report_id", "polls", "requested_at", "last_polled_at") == dict.fromkeys(
        ("job", "report_id", "polls", "requested_at", "last_polled_at"))
    assert fields(ledger, "status", "lease_owner", "claimed_at") == {
        "status": "REQUESTING", "lease_owner": rerun.execution_id, "claimed_at": at(10).isoformat()}


def test_a_synchronous_run_is_ready_at_once_under_a_download_lease(ledger: DynamoLedger) -> None:
    plan = run("a")
    ledger.claim(plan, now=NOW)
    ledger.requested(plan, job="run:a", report_id=None, ready=True, now=at(1))
    assert fields(ledger, "status", "job", "report_id", "lease_expires") == {
        "status": "READY", "job": "run:a", "report_id": None, "lease_expires": ms(at(1) + limits.DOWNLOAD_LEASE)}


def test_a_failure_is_recorded_with_its_error_who_failed_and_when(ledger: DynamoLedger) -> None:
    owner = run("a")
    requested(ledger, owner)
    assert ledger.failed(export=EXPORT.name, period="2026-10", execution=owner.execution_id,
                         error="ReportFailedError", message="x" * 2000, now=at(9))
    text = ("ReportFailedError: " + "x" * 2000)[:1000]
    assert fields(ledger, "status", "last_error", "failed_at", "failed_by", "updated_at", "lease_owner",
                  "lease_expires", "last_failure") == {
        "status": "FAILED", "last_error": text, "failed_at": at(9).isoformat(), "failed_by": owner.execution_id,
        "updated_at": at(9).isoformat(), "lease_owner": None, "lease_expires": None,
        "last_failure": f"{text} (execution a, {at(9).isoformat()})"[:1200]}


def test_a_failure_of_a_month_never_claimed_is_recorded_too(ledger: DynamoLedger) -> None:
    # Given PlanRun's month was never claimed (RequestReport did not run)
    assert ledger.failed(export=EXPORT.name, period="2026-10", execution=run("a").execution_id,
                         error="InvalidExportError", message="bad", now=NOW)
    assert fields(ledger, "status", "export", "period", "last_error") == {
        "status": "FAILED", "export": EXPORT.name, "period": "2026-10", "last_error": "InvalidExportError: bad"}


def test_a_failure_of_an_execution_that_no_longer_owns_the_month_only_notes_it(ledger: DynamoLedger) -> None:
    owner = run("a")
    requested(ledger, owner)
    assert not ledger.failed(export=EXPORT.name, period="2026-10", execution=run("b").execution_id,
                             error="VendorAuthError", message="refused", now=at(3))
    assert fields(ledger, "status", "last_failure", "failed_at") == {
        "status": "PENDING", "last_failure": f"VendorAuthError: refused (execution b, {at(3).isoformat()})",
        "failed_at": None}


def test_end_run_of_the_owner_fails_the_month_but_not_another_executions(ledger: DynamoLedger) -> None:
    owner = run("a")
    requested(ledger, owner)
    # EndRun of an execution that never held the month changes nothing, not even the failure note
    assert not ledger.failed(export=EXPORT.name, period="2026-10", execution=run("b").execution_id,
                             error="ExecutionTimedOut", message="timed out", now=NOW, only_if_owner=True)
    assert fields(ledger, "status", "last_failure") == {"status": "PENDING", "last_failure": None}
    # EndRun of the owner fails it, even before its lease has expired
    assert ledger.failed(export=EXPORT.name, period="2026-10", execution=owner.execution_id,
                         error="ExecutionTimedOut", message="timed out", now=NOW, only_if_owner=True)
    assert item(ledger)["status"] == "FAILED"


def test_a_replay_notes_the_new_row_count_and_when(ledger: DynamoLedger) -> None:
    owner = run("a")
    downloaded(ledger, owner)
    ledger.begin_publish(owner, job="1001", now=NOW)
    ledger.published(owner, job="1001", objects=CURATED, now=NOW)
    rebuilt = [CURATED[0].model_copy(update={"rows": 41})]
    ledger.record_replay(run("replay"), rebuilt, now=at(30))
    assert fields(ledger, "status", "rows", "replayed_at") == {"status": "PUBLISHED", "rows": 41,
                                                                "replayed_at": at(30).isoformat()}
    assert [CuratedObject.model_validate(o) for o in json.loads(str(item(ledger)["curated"]))] == rebuilt


def test_the_slot_item_lists_each_holder_with_its_month_until_its_runs_deadline(ledger: DynamoLedger) -> None:
    plan = run("a")
    ledger.acquire_slot(plan, 3, now=NOW)
    assert ledger.slots(EXPORT.account_key()) == {plan.execution_id: {
        "export": EXPORT.name, "period": "2026-10", "expires": ms(plan.deadline + limits.LEASE_GRACE)}}
    # A full account names the months that hold it
    for name, period in (("b", "2026-09"), ("c", "2026-08")):
        ledger.acquire_slot(run(name, period), 3, now=NOW)
    with pytest.raises(OutstandingReportCapError) as caught:
        ledger.acquire_slot(run("d", "2026-07"), 3, now=NOW)
    assert str(caught.value) == ("particle account of export 'particle-fleet' already has 3 reports outstanding "
                                 "(particle-fleet 2026-08, particle-fleet 2026-09, particle-fleet 2026-10); "
                                 "waiting for one to finish")


def test_a_holder_is_dropped_the_moment_its_lease_ends_not_before(ledger: DynamoLedger) -> None:
    old = run("a")
    ledger.acquire_slot(old, 1, now=NOW)
    expiry = old.deadline + limits.LEASE_GRACE
    with pytest.raises(OutstandingReportCapError):
        ledger.acquire_slot(run("b", "2026-09"), 1, now=expiry - timedelta(milliseconds=1))
    ledger.acquire_slot(run("b", "2026-09"), 1, now=expiry)
    assert set(ledger.slots(EXPORT.account_key())) == {run("b", "2026-09").execution_id}


class Interleave:
    """The ledger's DynamoDB client, letting another writer act just before some of this client's calls.

    ``before`` runs before each call of ``operation`` numbered in ``at`` (1-based); calls made by ``before``
    itself go straight through. Every call is kept, with its arguments.
    """

    def __init__(self, client: Any, operation: str = "", before: Callable[[], object] = lambda: None,
                 at: range | tuple[int, ...] = ()) -> None:
        self._client, self._operation, self._before, self._at = client, operation, before, at
        self._inside = False
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            if not self._inside:
                self.calls.append((name, kwargs))
                count = sum(1 for called, _ in self.calls if called == name)
                if name == self._operation and count in self._at:
                    self._inside = True
                    try:
                        self._before()
                    finally:
                        self._inside = False
            return method(**kwargs)

        return call

    def count(self, operation: str) -> int:
        return sum(1 for called, _ in self.calls if called == operation)


@pytest.fixture
def interleave(aws: Buckets) -> Iterator[Callable[..., Interleave]]:
    original = clients.dynamodb

    def install(operation: str = "", before: Callable[[], object] = lambda: None,
                at: range | tuple[int, ...] = ()) -> Interleave:
        proxy = Interleave(original(), operation, before, at)
        clients.dynamodb = lambda: proxy  # type: ignore[assignment]
        return proxy

    yield install
    clients.dynamodb = original  # type: ignore[assignment]


def bump(key: dict[str, Any], table: str) -> Callable[[], object]:
    """Another writer changing the item (its version) in between."""
    return lambda: boto3.client("dynamodb").update_item(
        TableName=table, Key=key, UpdateExpression="ADD #v :one", ExpressionAttributeNames={"#v": "version"},
        ExpressionAttributeValues={":one": {"N": "1"}})


MONTH_KEY = {"pk": {"S": "EXPORT#particle-fleet"}, "sk": {"S": "PERIOD#2026-10"}}
SLOT_KEY = {"pk": {"S": f"ACCOUNT#{EXPORT.account_key()}"}, "sk": {"S": "OUTSTANDING"}}


def test_every_read_of_the_ledger_is_strongly_consistent(ledger: DynamoLedger, interleave: Any) -> None:
    client = interleave()
    downloaded(ledger, run("a"))
    ledger.acquire_slot(run("a"), 3, now=NOW)
    reads = [kwargs for name, kwargs in client.calls if name == "get_item"]
    assert reads and all(kwargs["ConsistentRead"] is True for kwargs in reads)


def test_a_take_over_loses_to_an_execution_that_took_over_first(ledger: DynamoLedger, aws: Buckets,
                                                                 interleave: Any) -> None:
    # Given a pending report whose requester died (its lease expired)
    owner = run("a")
    requested(ledger, owner)
    later = owner.deadline + limits.LEASE_GRACE + timedelta(seconds=1)
    slow, fast = run("b", now=later), run("c", now=later)
    # When c takes it over between b's read and b's own take-over write
    interleave("update_item", lambda: ledger.claim(fast, now=later), at=(1,))
    claim = ledger.claim(slow, now=later)
    # Then b follows c's lease instead of overwriting it
    assert (claim.adopt, claim.job) == (True, "1001")
    assert item(ledger)["lease_owner"] == fast.execution_id


def test_a_follower_of_a_report_whose_requester_died_answers_for_it(ledger: DynamoLedger) -> None:
    owner = run("a")
    requested(ledger, owner)
    later = owner.deadline + limits.LEASE_GRACE + timedelta(seconds=1)
    follower = run("b", now=later)
    claim = ledger.claim(follower, now=later)
    assert (claim.adopt, claim.job, claim.report_id) == (True, "1001", "1001")
    assert fields(ledger, "lease_owner", "lease_expires", "status") == {
        "lease_owner": follower.execution_id, "lease_expires": ms(follower.deadline + limits.LEASE_GRACE),
        "status": "PENDING"}


def test_a_lease_is_over_at_the_millisecond_it_expires(ledger: DynamoLedger) -> None:
    owner = run("a")
    requested(ledger, owner)
    expiry = owner.deadline + limits.LEASE_GRACE
    ledger.claim(run("b"), now=expiry - timedelta(milliseconds=1))
    assert item(ledger)["lease_owner"] == owner.execution_id
    ledger.claim(run("b"), now=expiry)
    assert item(ledger)["lease_owner"] == run("b").execution_id


def test_a_requester_retried_while_its_own_claim_is_live_claims_again(ledger: DynamoLedger) -> None:
    me = run("a")
    assert ledger.claim(me, now=NOW).adopt is False
    # RequestReport retried by Step Functions half a minute later, same execution
    assert ledger.claim(me, now=NOW + timedelta(seconds=30)).adopt is False
    assert fields(ledger, "status", "claimed_at") == {"status": "REQUESTING",
                                                      "claimed_at": (NOW + timedelta(seconds=30)).isoformat()}


def test_a_claim_gives_up_after_five_reads_that_kept_changing(ledger: DynamoLedger, aws: Buckets,
                                                              interleave: Any) -> None:
    ledger.claim(run("a"), now=NOW)
    later = NOW + limits.REQUEST_LEASE + timedelta(seconds=1)
    client = interleave("update_item", bump(MONTH_KEY, aws.ledger), at=range(1, 100))
    with pytest.raises(ReportBusyError) as caught:
        ledger.claim(run("b"), now=later)
    assert str(caught.value) == "export 'particle-fleet' 2026-10: the ledger kept changing; retrying"
    assert client.count("update_item") == 5


def test_a_slot_is_given_up_after_eight_reads_that_kept_changing(ledger: DynamoLedger, aws: Buckets,
                                                                 interleave: Any) -> None:
    ledger.acquire_slot(run("a"), 3, now=NOW)
    client = interleave("put_item", bump(SLOT_KEY, aws.ledger), at=range(1, 100))
    with pytest.raises(OutstandingReportCapError) as caught:
        ledger.acquire_slot(run("b", "2026-09"), 3, now=NOW)
    assert str(caught.value) == "particle: the slot item kept changing; retrying"
    assert client.count("put_item") == 8
    assert set(ledger.slots(EXPORT.account_key())) == {run("a").execution_id}


def test_ending_an_execution_retries_a_slot_item_that_kept_changing(ledger: DynamoLedger, aws: Buckets,
                                                                    interleave: Any) -> None:
    ledger.acquire_slot(run("a"), 3, now=NOW)
    interleave("put_item", bump(SLOT_KEY, aws.ledger), at=range(1, 100))
    with pytest.raises(ReportBusyError) as caught:
        ledger.ended(export=EXPORT.name, period="2026-10", account=EXPORT.account_key(),
                     execution=run("a").execution_id, now=NOW)
    assert str(caught.value) == f"{EXPORT.account_key()}: the slot item kept changing; retrying"


def test_a_slot_taken_while_another_is_released_does_not_bring_the_released_one_back(
        ledger: DynamoLedger, interleave: Any) -> None:
    first, second = run("a"), run("b", "2026-09")
    ledger.acquire_slot(first, 3, now=NOW)
    # When the first run's slot is released between the second's read of the slot item and its write
    interleave("put_item", lambda: ledger.release_slot(EXPORT.account_key(), first.execution_id), at=(1,))
    ledger.acquire_slot(second, 3, now=NOW)
    # Then only the second holds a slot
    assert set(ledger.slots(EXPORT.account_key())) == {second.execution_id}


def test_the_slot_item_is_one_item_per_account_with_its_holders_and_last_change(ledger: DynamoLedger,
                                                                               aws: Buckets) -> None:
    ledger.acquire_slot(run("a"), 3, now=at(1))
    raw = boto3.client("dynamodb").get_item(TableName=aws.ledger, Key=SLOT_KEY)["Item"]
    assert raw["updated_at"] == {"S": at(1).isoformat()}
    assert set(raw["holders"]["M"]) == {run("a").execution_id}


def test_releasing_a_slot_never_taken_leaves_no_slot_item(ledger: DynamoLedger, aws: Buckets) -> None:
    ledger.release_slot(EXPORT.account_key(), run("a").execution_id)
    assert "Item" not in boto3.client("dynamodb").get_item(TableName=aws.ledger, Key=SLOT_KEY)


def test_an_ended_executions_mark_on_the_slot_item_lasts_until_a_download_lease_would(ledger: DynamoLedger) -> None:
    late = run("late")
    ledger.ended(export=EXPORT.name, period="2026-10", account=EXPORT.account_key(), execution=late.execution_id,
                 now=NOW)
    with pytest.raises(RunEndedError):
        ledger.acquire_slot(late, 3, now=NOW + limits.DOWNLOAD_LEASE - timedelta(milliseconds=1))
    ledger.acquire_slot(late, 3, now=NOW + limits.DOWNLOAD_LEASE)
    assert set(ledger.slots(EXPORT.account_key())) == {late.execution_id}


def test_a_late_poll_does_not_move_a_report_back_or_touch_a_newer_request(ledger: DynamoLedger) -> None:
    owner = run("a")
    requested(ledger, owner)
    ledger.polled(owner, job="1001", polls=1, ready=True, now=at(1))
    ledger.begin_download(owner, job="1001", now=at(2))
    # A poll answered late (a retried CheckReport) after the download started
    ledger.polled(owner, job="1001", polls=2, ready=True, now=at(3))
    assert fields(ledger, "status", "polls", "last_polled_at") == {"status": "DOWNLOADING", "polls": 1,
                                                                   "last_polled_at": at(1).isoformat()}
    # A poll of an old report after the month was requested again
    ledger.failed(export=EXPORT.name, period="2026-10", execution=owner.execution_id, error="E", message="m", now=at(4))
    requested(ledger, run("b"), job="1002", now=at(5))
    ledger.polled(owner, job="1001", polls=9, ready=True, now=at(6))
    assert fields(ledger, "job", "status", "polls") == {"job": "1002", "status": "PENDING", "polls": 0}


def test_a_late_publish_of_an_old_report_leaves_the_newer_request_alone(ledger: DynamoLedger) -> None:
    owner = run("a")
    downloaded(ledger, owner)
    ledger.begin_publish(owner, job="1001", now=NOW)
    ledger.failed(export=EXPORT.name, period="2026-10", execution=owner.execution_id, error="E", message="m", now=NOW)
    requested(ledger, run("b"), job="1002")
    ledger.published(owner, job="1001", objects=CURATED, now=at(1))
    assert fields(ledger, "job", "status", "published_job", "rows") == {"job": "1002", "status": "PENDING",
                                                                        "published_job": None, "rows": None}


def test_a_late_download_record_gets_the_raw_file_the_new_holder_kept(ledger: DynamoLedger) -> None:
    owner, adopter = run("a"), run("b")
    requested(ledger, owner)
    ledger.begin_download(owner, job="1001", now=NOW)
    later = NOW + limits.DOWNLOAD_LEASE + timedelta(seconds=1)
    ledger.begin_download(adopter, job="1001", now=later)
    theirs = [RAW[0].model_copy(update={"key": "raw/particle/particle-fleet/2026-10/report-1001-b.csv"})]
    ledger.downloaded(adopter, job="1001", objects=theirs, now=later)
    # The first downloader finishes late: it is told to use the file the ledger kept, not its own
    assert ledger.downloaded(owner, job="1001", objects=RAW, now=later) == theirs


def test_busy_and_superseded_errors_say_who_holds_the_month(ledger: DynamoLedger) -> None:
    owner, other = run("a"), run("b")
    requested(ledger, owner)
    ledger.begin_download(owner, job="1001", now=NOW)
    with pytest.raises(ReportBusyError) as caught:
        ledger.downloaded(other, job="1001", objects=RAW, now=NOW)
    assert str(caught.value) == "export 'particle-fleet' 2026-10: the download lease was taken over"
    ledger.downloaded(owner, job="1001", objects=RAW, now=NOW)
    ledger.begin_publish(owner, job="1001", now=NOW)
    with pytest.raises(ReportBusyError) as caught:
        ledger.begin_publish(other, job="1001", now=NOW)
    assert str(caught.value) == ("export 'particle-fleet' 2026-10: execution a is publishing this report right now "
                                 "(status PUBLISHING); this run will report its result")
    with pytest.raises(ReportSupersededError) as caught:
        ledger.begin_download(other, job="999", now=NOW)
    assert str(caught.value) == ("export 'particle-fleet' 2026-10: report 999 was replaced by a newer request "
                                 "(execution a); this run stops")


def test_a_download_of_a_month_never_requested_says_so(ledger: DynamoLedger) -> None:
    with pytest.raises(ReportSupersededError) as caught:
        ledger.begin_download(run("a"), job="1001", now=NOW)
    assert str(caught.value) == ("export 'particle-fleet' 2026-10: the ledger holds no request for report 1001 "
                                 "(status none); RequestReport records one before any download or publish")


def test_a_superseded_report_names_the_requester_when_nobody_holds_a_lease(ledger: DynamoLedger) -> None:
    owner = run("a")
    downloaded(ledger, owner)
    ledger.begin_publish(owner, job="1001", now=NOW)
    ledger.published(owner, job="1001", objects=CURATED, now=NOW)
    with pytest.raises(ReportSupersededError, match=r"\(execution a\); this run stops$"):
        ledger.begin_download(run("b"), job="999", now=NOW)


def test_a_requester_overtaken_while_requesting_is_told_to_adopt(ledger: DynamoLedger) -> None:
    owner, other = run("a"), run("b")
    ledger.claim(owner, now=NOW)
    ledger.claim(other, now=NOW + limits.REQUEST_LEASE + timedelta(seconds=1))
    with pytest.raises(ReportBusyError) as caught:
        ledger.requested(owner, job="1001", report_id="1001", ready=False, now=NOW)
    assert str(caught.value) == ("export 'particle-fleet' 2026-10: another execution took over while this one was "
                                 "requesting; this run will adopt its report")


def test_a_late_invocation_of_an_ended_execution_is_told_it_takes_nothing(ledger: DynamoLedger) -> None:
    late = run("late")
    ledger.ended(export=EXPORT.name, period="2026-10", account=None, execution=late.execution_id, now=NOW)
    with pytest.raises(RunEndedError) as caught:
        ledger.claim(late, now=NOW)
    assert str(caught.value) == ("export 'particle-fleet' 2026-10: execution late has ended (stopped or timed out); "
                                 "this late invocation takes nothing")


def test_a_ledger_without_a_table_name_says_which_setting_is_missing() -> None:
    with pytest.raises(ValueError, match=r"^the ledger needs a DynamoDB table name \(LEDGER_TABLE\)$"):
        DynamoLedger("")


def test_a_download_while_the_month_is_still_being_requested_names_its_status(ledger: DynamoLedger) -> None:
    ledger.claim(run("a"), now=NOW)
    with pytest.raises(ReportSupersededError, match=r"no request for report 1001 \(status REQUESTING\); "):
        ledger.begin_download(run("b"), job="1001", now=NOW)


def test_a_superseded_report_names_the_execution_that_holds_the_month_now(ledger: DynamoLedger) -> None:
    # Given report 1001 requested by a, and adopted by b once a's lease had expired
    owner = run("a")
    requested(ledger, owner)
    later = owner.deadline + limits.LEASE_GRACE + timedelta(seconds=1)
    ledger.claim(run("b", now=later), now=later)
    # When a follower of an older report downloads / Then b is named, not the requester a
    with pytest.raises(ReportSupersededError, match=r"\(execution b\); this run stops$"):
        ledger.begin_download(run("c", now=later), job="999", now=later)
