"""RequestReport: adopt or request within the account's cap, and wait for a slot only until the deadline."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from report_exporter.adapters.base import PollResult, RawSink, RequestResult
from report_exporter.errors import OutstandingReportCapError, ReportTimedOutError, VendorAuthError
from report_exporter.logic.request_report import request_report
from report_exporter.models.exports import ParticleExport, TelnyxExport
from report_exporter.models.payloads import JobStatus, RequestInput, RunPlan
from report_exporter.ports import Claim
from report_exporter.vendors.base import Cadence
from report_exporter.vendors.particle.adapter import CADENCE
from tests.fakes import RecordingLedger, plan_for

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
PARTICLE = ParticleExport(name="particle-demo", secret_name="s")
TELNYX = TelnyxExport(name="telnyx-demo", secret_name="s", product="messaging", dimensions=("direction",),
                      metrics=("cost",))


@dataclass
class Adapter:
    answer: RequestResult | Exception = field(default_factory=lambda: RequestResult(JobStatus.PENDING, "1001"))
    cadence: Cadence = CADENCE
    timeout_error: type[Exception] = ReportTimedOutError
    requests: int = 0

    def request(self, plan: RunPlan) -> RequestResult:
        self.requests += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        raise AssertionError("not called")

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        raise AssertionError("not called")


def request(adapter: Adapter, ledger: RecordingLedger, plan: RunPlan | None = None, now: datetime = NOW):  # type: ignore[no-untyped-def]
    return request_report(RequestInput(plan=plan or plan_for(PARTICLE, now=NOW)), adapter=adapter,  # type: ignore[arg-type]
                          ledger=ledger, now=now)


def test_a_new_report_takes_a_slot_and_is_recorded_pending() -> None:
    adapter, ledger = Adapter(), RecordingLedger()
    job = request(adapter, ledger)
    assert (job.job, job.report_id, job.status, job.wait_seconds, job.adopted) == (
        "1001", "1001", JobStatus.PENDING, 15, False)
    assert ledger.names() == ["claim", "acquire_slot", "requested"]
    assert ledger.args("acquire_slot")[0]["cap"] == 3
    assert ledger.args("requested") == [{"job": "1001", "report_id": "1001", "ready": False,
                                         "execution": plan_for(PARTICLE, now=NOW).execution_id, "now": NOW}]


def test_an_open_report_is_adopted_without_asking_the_vendor() -> None:
    adapter = Adapter()
    ledger = RecordingLedger(claim_answer=Claim(adopt=True, job="1001", report_id="1001"))
    job = request(adapter, ledger)
    assert (job.job, job.status, job.adopted, job.wait_seconds) == ("1001", JobStatus.PENDING, True, 5)
    assert adapter.requests == 0 and ledger.names() == ["claim"]


def test_a_synchronous_vendors_run_is_named_after_the_execution_and_adopted_as_ready() -> None:
    plan = plan_for(TELNYX, now=NOW)
    ready = RequestResult(JobStatus.READY, None)
    job = request(Adapter(answer=ready), RecordingLedger(), plan)
    assert job.job == f"run:{plan.run_name}" and job.report_id is None and job.status is JobStatus.READY
    adopted = request(Adapter(answer=ready), RecordingLedger(claim_answer=Claim(adopt=True, job=job.job)), plan)
    # Nothing to poll: the follower goes straight to the download (and reuses the other run's raw file)
    assert adopted.status is JobStatus.READY and adopted.adopted


def test_a_refused_request_frees_the_slot_it_took() -> None:
    ledger = RecordingLedger()
    with pytest.raises(VendorAuthError):
        request(Adapter(answer=VendorAuthError("refused")), ledger)
    assert ledger.names() == ["claim", "acquire_slot", "release_slot"]


def test_a_full_account_waits_for_a_slot_then_gives_up_at_the_deadline() -> None:
    plan = plan_for(PARTICLE, now=NOW, deadline_minutes=60)
    full = RecordingLedger(slot_error=OutstandingReportCapError("3 outstanding"))
    # Before the deadline: retried by the state machine (wait for a slot)
    with pytest.raises(OutstandingReportCapError):
        request(Adapter(), full, plan, now=NOW + timedelta(minutes=59))
    # At the deadline: a clear terminal error instead of retrying for ever
    with pytest.raises(ReportTimedOutError, match=r"no report slot .* became free before the deadline"):
        request(Adapter(), full, plan, now=NOW + timedelta(minutes=60))


def test_the_vendor_refusing_for_its_cap_is_waited_for_too_and_frees_our_slot() -> None:
    ledger = RecordingLedger()
    with pytest.raises(OutstandingReportCapError):
        request(Adapter(answer=OutstandingReportCapError("particle: 3 outstanding")), ledger)
    assert ledger.names()[-1] == "release_slot"


def test_an_adopted_report_keeps_its_vendor_id_and_is_checked_soon() -> None:
    ledger = RecordingLedger(claim_answer=Claim(adopt=True, job="1001", report_id="1001"))
    job = request(Adapter(), ledger, now=NOW + timedelta(minutes=3))
    assert (job.report_id, job.requested_at, job.polls, job.wait_seconds) == ("1001", NOW + timedelta(minutes=3), 0, 5)
    assert ledger.args("claim") == [{"execution": plan_for(PARTICLE, now=NOW).execution_id,
                                     "now": NOW + timedelta(minutes=3)}]


def test_an_adopted_synchronous_run_goes_straight_to_the_download() -> None:
    plan = plan_for(TELNYX, now=NOW)
    ledger = RecordingLedger(claim_answer=Claim(adopt=True, job=f"run:{plan.run_name}"))
    job = request(Adapter(answer=RequestResult(JobStatus.READY, None)), ledger, plan)
    assert (job.status, job.report_id, job.wait_seconds, job.adopted) == (JobStatus.READY, None, 0, True)


def test_a_new_report_asks_for_the_slot_now_and_waits_the_first_cadence_step() -> None:
    plan = plan_for(PARTICLE, now=NOW)
    ledger = RecordingLedger()
    job = request(Adapter(cadence=Cadence(steps=(20, 40))), ledger, plan, now=NOW + timedelta(seconds=30))
    assert ledger.args("acquire_slot") == [{"cap": 3, "execution": plan.execution_id,
                                            "now": NOW + timedelta(seconds=30)}]
    assert (job.requested_at, job.polls, job.wait_seconds) == (NOW + timedelta(seconds=30), 0, 20)


def test_a_synchronous_vendor_is_ready_at_once_without_a_slot_or_a_wait() -> None:
    plan = plan_for(TELNYX, now=NOW)
    ledger = RecordingLedger()
    job = request(Adapter(answer=RequestResult(JobStatus.READY, None)), ledger, plan)
    assert (job.status, job.wait_seconds, job.polls) == (JobStatus.READY, 0, 0)
    assert ledger.names() == ["claim", "requested"]
    assert ledger.args("requested") == [{"job": f"run:{plan.run_name}", "report_id": None, "ready": True,
                                         "execution": plan.execution_id, "now": NOW}]


def test_a_capped_account_whose_vendor_answers_at_once_frees_the_slot_it_took() -> None:
    plan = plan_for(PARTICLE, now=NOW)
    ledger = RecordingLedger()
    job = request(Adapter(answer=RequestResult(JobStatus.READY, "1001")), ledger, plan)
    assert (job.status, job.wait_seconds) == (JobStatus.READY, 0)
    assert ledger.names() == ["claim", "acquire_slot", "release_slot", "requested"]
    assert ledger.args("release_slot") == [{"account": PARTICLE.account_key(), "execution": plan.execution_id}]


def test_a_refused_request_frees_this_runs_slot_of_the_account() -> None:
    plan = plan_for(PARTICLE, now=NOW)
    ledger = RecordingLedger()
    with pytest.raises(VendorAuthError):
        request(Adapter(answer=VendorAuthError("refused")), ledger, plan)
    assert ledger.args("release_slot") == [{"account": PARTICLE.account_key(), "execution": plan.execution_id}]


def test_at_exactly_the_deadline_a_capped_account_takes_no_slot_and_asks_nothing() -> None:
    plan = plan_for(PARTICLE, now=NOW)
    ledger, adapter = RecordingLedger(), Adapter()
    with pytest.raises(ReportTimedOutError) as caught:
        request(adapter, ledger, plan, now=plan.deadline)
    assert str(caught.value) == ("export 'particle-demo' 2026-10: no report slot of the particle account became free "
                                 "before the deadline (360 min)")
    assert ledger.names() == ["claim"] and adapter.requests == 0


def test_a_vendor_refusing_for_its_own_cap_at_the_deadline_gives_up_saying_why() -> None:
    # Given an export the ledger does not cap, whose vendor still refuses for its cap, at the run's deadline
    plan = plan_for(TELNYX, now=NOW)
    adapter = Adapter(answer=OutstandingReportCapError("3 reports outstanding"))
    # When requested at the deadline / Then the run gives up, naming the vendor's refusal
    with pytest.raises(ReportTimedOutError) as caught:
        request(adapter, RecordingLedger(), plan, now=plan.deadline)
    assert str(caught.value) == ("export 'telnyx-demo' 2026-10: no report slot of the telnyx account became free "
                                 f"before the deadline ({TELNYX.report_deadline_minutes} min): 3 reports outstanding")
    # And a minute earlier the refusal is retried as it is
    with pytest.raises(OutstandingReportCapError):
        request(adapter, RecordingLedger(), plan, now=plan.deadline - timedelta(minutes=1))
