"""CheckReport: the vendor cadence, throttling and the deadline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from report_exporter.adapters.base import PollResult, RawSink, RequestResult
from report_exporter.errors import ReportTimedOutError, VendorContractError, VendorThrottledError
from report_exporter.logic.check_report import check_report
from report_exporter.logic.request_report import request_report
from report_exporter.models.exports import ParticleExport
from report_exporter.models.payloads import CheckInput, JobStatus, ReportJob, RequestInput, RunPlan
from report_exporter.vendors.base import Cadence
from report_exporter.vendors.particle.adapter import CADENCE as PARTICLE_CADENCE
from tests.fakes import RecordingLedger, plan_for

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
EXPORT = ParticleExport(name="particle-demo", secret_name="s")


@dataclass
class ScriptedAdapter:
    """Answers polls from a script: a status, or an exception to raise."""

    script: list[PollResult | Exception]
    cadence: Cadence = PARTICLE_CADENCE
    timeout_error: type[Exception] = ReportTimedOutError
    polls: list[str] = field(default_factory=list)

    ledger: RecordingLedger = field(default_factory=RecordingLedger)

    def request(self, plan: RunPlan) -> RequestResult:
        return RequestResult(JobStatus.PENDING, "r-1")

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        self.polls.append(report_id)
        step = self.script.pop(0)
        if isinstance(step, Exception):
            raise step
        return step

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        raise AssertionError("not called")


PENDING = PollResult(JobStatus.PENDING, detail="pending")
READY = PollResult(JobStatus.READY)


def run_loop(adapter: ScriptedAdapter, plan: RunPlan, now: datetime = NOW) -> list[int]:
    ledger = adapter.ledger
    job = request_report(RequestInput(plan=plan), adapter=adapter, ledger=ledger, now=now)  # type: ignore[arg-type]
    waits = [job.wait_seconds]
    while job.status is JobStatus.PENDING:
        now += timedelta(seconds=job.wait_seconds)
        job = check_report(CheckInput(plan=plan, job=job), adapter=adapter, ledger=ledger,  # type: ignore[arg-type]
                           now=now)
        waits.append(job.wait_seconds)
    return waits


def test_check_report_follows_particles_cadence_then_once_a_minute() -> None:
    # Given a report pending for five polls
    adapter = ScriptedAdapter([PENDING] * 5 + [READY])
    # When the loop runs / Then waits escalate 15, 30, 60 and stay at 60; ready ends with 0
    assert run_loop(adapter, plan_for(EXPORT, now=NOW)) == [15, 30, 60, 60, 60, 60, 0]


def test_check_report_waits_longer_when_throttled_instead_of_failing() -> None:
    # Given the vendor throttles the second poll and asks for 120 s
    adapter = ScriptedAdapter([PENDING, VendorThrottledError("429", retry_after=120), READY])
    # When the loop runs / Then the throttled poll is followed by the vendor's 120 s, not a failure
    assert run_loop(adapter, plan_for(EXPORT, now=NOW)) == [15, 30, 120, 0]


def test_check_report_throttled_without_hint_doubles_the_cadence() -> None:
    adapter = ScriptedAdapter([VendorThrottledError("429"), READY])
    assert run_loop(adapter, plan_for(EXPORT, now=NOW)) == [15, 60, 0]


def test_check_report_times_out_past_the_deadline_naming_the_report() -> None:
    # Given a 5-minute deadline and a report that never becomes ready
    adapter = ScriptedAdapter([PENDING] * 100)
    plan = plan_for(EXPORT, now=NOW, deadline_minutes=5)
    # When the loop runs / Then ReportTimedOutError after the deadline, naming report and polls
    with pytest.raises(ReportTimedOutError, match=r"report r-1 .* still pending after \d+ polls"):
        run_loop(adapter, plan)
    assert 5 <= len(adapter.polls) <= 9


def test_check_report_never_waits_beyond_the_deadline() -> None:
    # Given 20 s left before the deadline
    plan = plan_for(EXPORT, now=NOW, deadline_minutes=1)
    job = ReportJob(job="r-1", report_id="r-1", status=JobStatus.PENDING, requested_at=NOW, polls=2, wait_seconds=60)
    # When a pending poll plans the next wait
    out = check_report(CheckInput(plan=plan, job=job), adapter=ScriptedAdapter([PENDING]),  # type: ignore[arg-type]
                       ledger=RecordingLedger(), now=NOW + timedelta(seconds=40))
    # Then the wait stops at the deadline
    assert out.wait_seconds == 20


def test_check_report_returns_ready_even_at_the_deadline() -> None:
    plan = plan_for(EXPORT, now=NOW, deadline_minutes=1)
    job = ReportJob(job="r-1", report_id="r-1", status=JobStatus.PENDING, requested_at=NOW, polls=2, wait_seconds=60)
    out = check_report(CheckInput(plan=plan, job=job), adapter=ScriptedAdapter([READY]),  # type: ignore[arg-type]
                       ledger=RecordingLedger(), now=NOW + timedelta(minutes=2))
    assert out.status is JobStatus.READY


def test_check_report_waits_at_least_the_vendors_hint_on_a_normal_poll() -> None:
    # Given a pending poll whose answer asks for 200 s (more than the 30 s cadence)
    adapter = ScriptedAdapter([PollResult(JobStatus.PENDING, retry_after=200), READY])
    # Then the next wait is the vendor's 200 s
    assert run_loop(adapter, plan_for(EXPORT, now=NOW)) == [15, 200, 0]


def test_check_report_throttled_waits_the_longer_of_the_hint_and_twice_the_cadence() -> None:
    # The second poll is throttled; its normal wait would be 60 s, so twice the cadence is 120 s
    short_hint = ScriptedAdapter([PENDING, VendorThrottledError("429", retry_after=45), READY])
    long_hint = ScriptedAdapter([PENDING, VendorThrottledError("429", retry_after=200), READY])
    assert run_loop(short_hint, plan_for(EXPORT, now=NOW)) == [15, 30, 120, 0]
    assert run_loop(long_hint, plan_for(EXPORT, now=NOW)) == [15, 30, 200, 0]


def test_check_report_never_waits_more_than_an_hour() -> None:
    adapter = ScriptedAdapter([PollResult(JobStatus.PENDING, retry_after=86_400), READY])
    assert run_loop(adapter, plan_for(EXPORT, now=NOW, deadline_minutes=48 * 60)) == [15, 3600, 0]


def test_check_report_counts_polls_in_the_ledger_and_frees_the_slot_once_ready() -> None:
    # Given a Particle report (capped account) ready on the third poll
    adapter = ScriptedAdapter([PENDING, PENDING, READY])
    run_loop(adapter, plan_for(EXPORT, now=NOW))
    ledger = adapter.ledger
    # Then every poll is counted in the ledger, the last one as ready
    assert [(c["polls"], c["ready"]) for c in ledger.args("polled")] == [(1, False), (2, False), (3, True)]
    assert {c["job"] for c in ledger.args("polled")} == {"r-1"}
    # And the account's slot is taken at the request and freed exactly when the report is ready
    assert ledger.names().count("acquire_slot") == 1
    assert ledger.names()[-1] == "release_slot"
    assert ledger.names().count("release_slot") == 1


def test_check_report_tells_the_ledger_which_run_polled_when_and_frees_that_runs_slot() -> None:
    adapter = ScriptedAdapter([PENDING, READY])
    plan = plan_for(EXPORT, now=NOW)
    run_loop(adapter, plan)
    first, second = adapter.ledger.args("polled")
    assert (first["execution"], first["now"]) == (plan.execution_id, NOW + timedelta(seconds=15))
    assert second["now"] == NOW + timedelta(seconds=45)
    (released,) = adapter.ledger.args("release_slot")
    assert released == {"account": EXPORT.account_key(), "execution": plan.execution_id}


def test_check_report_returns_the_poll_count_with_a_ready_report() -> None:
    plan = plan_for(EXPORT, now=NOW)
    job = ReportJob(job="r-1", report_id="r-1", status=JobStatus.PENDING, requested_at=NOW, polls=2, wait_seconds=60)
    adapter = ScriptedAdapter([READY])
    out = check_report(CheckInput(plan=plan, job=job), adapter=adapter,  # type: ignore[arg-type]
                       ledger=RecordingLedger(), now=NOW + timedelta(minutes=2))
    assert (out.status, out.polls, out.wait_seconds) == (JobStatus.READY, 3, 0)
    assert adapter.polls == ["r-1"]


@pytest.mark.parametrize(("answer", "said"), [
    (VendorThrottledError("429"), "still throttled after 3 polls over 6 min"),
    (PollResult(JobStatus.PENDING), "still pending after 3 polls over 6 min"),
    (PollResult(JobStatus.PENDING, detail="queued"), "still queued after 3 polls over 6 min"),
])
def test_check_report_at_the_deadline_says_what_the_report_was_doing(answer: object, said: str) -> None:
    # Given a report requested 6 minutes ago, two polls done, and a 5-minute deadline
    plan = plan_for(EXPORT, now=NOW, deadline_minutes=5)
    job = ReportJob(job="r-1", report_id="r-1", status=JobStatus.PENDING, requested_at=NOW, polls=2, wait_seconds=60)
    # When the third poll finds it not ready
    with pytest.raises(ReportTimedOutError) as caught:
        check_report(CheckInput(plan=plan, job=job), adapter=ScriptedAdapter([answer]),  # type: ignore[arg-type,list-item]
                     ledger=RecordingLedger(), now=NOW + timedelta(minutes=6))
    # Then the error says so, with the polls and the minutes waited
    assert said in str(caught.value) and "(deadline 5 min)" in str(caught.value)


def test_check_report_refuses_a_job_without_a_vendor_report_id() -> None:
    job = ReportJob(job="run:x", status=JobStatus.READY, requested_at=NOW)
    said = r"^CheckReport needs a vendor report id; synchronous vendors skip the wait loop$"
    with pytest.raises(VendorContractError, match=said):
        check_report(CheckInput(plan=plan_for(EXPORT, now=NOW), job=job), adapter=ScriptedAdapter([]),  # type: ignore[arg-type]
                     ledger=RecordingLedger(), now=NOW)


def test_check_report_at_the_deadline_counts_minutes_from_the_request_and_names_the_plans_deadline() -> None:
    # Given a run with a 90-minute deadline whose report was requested 2 minutes into the run
    plan = plan_for(EXPORT, now=NOW, deadline_minutes=90)
    job = ReportJob(job="r-1", report_id="r-1", status=JobStatus.PENDING, requested_at=NOW + timedelta(minutes=2),
                    polls=40, wait_seconds=60)
    # When a poll 95 minutes into the run still finds it pending
    with pytest.raises(ReportTimedOutError) as caught:
        check_report(CheckInput(plan=plan, job=job), adapter=ScriptedAdapter([PENDING]),  # type: ignore[arg-type]
                     ledger=RecordingLedger(), now=NOW + timedelta(minutes=95))
    # Then it has waited 93 minutes for the report, against the run's 90
    assert str(caught.value).endswith("still pending after 41 polls over 93 min (deadline 90 min)")


def test_a_ready_reports_link_expiry_is_kept_on_the_job_and_in_the_ledger() -> None:
    # Given a report found ready whose download link the vendor says expires in seven days
    expiry = NOW + timedelta(days=7)
    adapter = ScriptedAdapter([PollResult(JobStatus.READY, expires_at=expiry)])
    plan = plan_for(EXPORT, now=NOW)
    job = request_report(RequestInput(plan=plan), adapter=adapter, ledger=adapter.ledger, now=NOW)  # type: ignore[arg-type]
    # When CheckReport polls it
    out = check_report(CheckInput(plan=plan, job=job), adapter=adapter, ledger=adapter.ledger,  # type: ignore[arg-type]
                       now=NOW + timedelta(seconds=15))
    # Then the job carries the expiry (DownloadReport's alarm clock) and the ledger records it with the poll
    assert out.status is JobStatus.READY and out.link_expires_at == expiry
    polled = [args for name, args in adapter.ledger.calls if name == "polled"]
    assert polled == [{"job": job.job, "polls": 1, "ready": True, "link_expires_at": expiry,
                       "execution": plan.execution_id, "now": NOW + timedelta(seconds=15)}]


def test_a_pending_poll_records_no_link_expiry_even_if_the_vendor_sends_one() -> None:
    # Given a still-pending report whose status answer names an expiry anyway
    adapter = ScriptedAdapter([PollResult(JobStatus.PENDING, expires_at=NOW + timedelta(days=7))])
    plan = plan_for(EXPORT, now=NOW)
    job = request_report(RequestInput(plan=plan), adapter=adapter, ledger=adapter.ledger, now=NOW)  # type: ignore[arg-type]
    # When CheckReport polls it
    out = check_report(CheckInput(plan=plan, job=job), adapter=adapter, ledger=adapter.ledger,  # type: ignore[arg-type]
                       now=NOW + timedelta(seconds=15))
    # Then neither the job nor the ledger holds an expiry: there is no link yet
    assert out.status is JobStatus.PENDING and out.link_expires_at is None
    assert [args["link_expires_at"] for name, args in adapter.ledger.calls if name == "polled"] == [None]
