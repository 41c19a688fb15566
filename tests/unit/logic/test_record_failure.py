"""RecordFailure and EndRun: what is recorded, released and alerted when a run fails or dies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from report_exporter.logic.end_run import end_run
from report_exporter.logic.record_failure import record_failure
from report_exporter.models.exports import ParticleExport, TelnyxExport
from report_exporter.models.payloads import EndRunInput, FailureInput, StartInput
from tests.fakes import RecordingLedger, plan_for

NOW = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
PARTICLE = ParticleExport(name="particle-demo", secret_name="s")
ARN = "arn:aws:states:us-east-1:123456789012:execution:m:particle-demo-2026-10"


def failure(plan_export=PARTICLE, error: str = "ReportFailedError"):  # type: ignore[no-untyped-def]
    plan = plan_for(plan_export, now=NOW)
    cause = json.dumps({"errorType": error, "errorMessage": "the vendor says failed", "stackTrace": []})
    return FailureInput.model_validate({"state": {"plan": plan.model_dump(mode="json"),
                                                  "error": {"Error": error, "Cause": cause}},
                                        "execution_id": plan.execution_id})


def test_a_failure_is_recorded_the_slot_freed_and_the_operator_told() -> None:
    ledger, sent = RecordingLedger(), []
    record = record_failure(failure(), notify=lambda s, b: sent.append((s, b)), ledger=ledger, now=NOW)
    (failed,) = ledger.args("failed")
    assert (failed["export"], failed["period"], failed["error"]) == ("particle-demo", "2026-10", "ReportFailedError")
    assert failed["message"] == "the vendor says failed" and failed["only_if_owner"] is False
    assert ledger.args("release_slot")[0]["execution"] == failed["execution"]
    assert record.ledger_updated and record.notified
    ((subject, body),) = sent
    assert "particle-demo 2026-10 failed: ReportFailedError" in subject and "console.aws.amazon.com" in body


def test_an_adopters_failure_is_alerted_but_reported_as_not_updating_the_ledger() -> None:
    record = record_failure(failure(), notify=None, ledger=RecordingLedger(failed_answer=False), now=NOW)
    assert record.ledger_updated is False and record.notified is False


def test_an_uncapped_vendor_has_no_slot_to_free() -> None:
    ledger = RecordingLedger()
    telnyx = TelnyxExport(name="telnyx-x", secret_name="s", product="messaging", dimensions=("direction",),
                          metrics=("cost",))
    record_failure(failure(telnyx), notify=None, ledger=ledger, now=NOW)
    assert "release_slot" not in ledger.names()


def ended(status: str, start: StartInput, *, started: datetime = NOW) -> EndRunInput:
    return EndRunInput.model_validate({"detail": {
        "executionArn": ARN, "status": status, "startDate": int(started.timestamp() * 1000),
        "input": start.model_dump_json()}})


def test_end_run_releases_what_a_stopped_execution_held_without_alerting() -> None:
    ledger, sent = RecordingLedger(), []
    record = end_run(ended("ABORTED", StartInput(export=PARTICLE, period="2026-09")), ledger=ledger,
                     notify=lambda s, b: sent.append(s), now=NOW)
    assert ledger.args("ended") == [{"export": "particle-demo", "period": "2026-09",
                                     "account": PARTICLE.account_key(), "execution": ARN, "now": NOW}]
    (failed,) = ledger.args("failed")
    assert (failed["period"], failed["error"], failed["only_if_owner"]) == ("2026-09", "ExecutionAborted", True)
    assert record.ledger_updated and not record.notified and sent == []


def test_end_run_alerts_a_timed_out_execution_and_finds_its_month_like_plan_run() -> None:
    ledger, sent = RecordingLedger(), []
    # A scheduled run (no period): the month before the scheduled time
    scheduled = StartInput(export=PARTICLE, scheduled_time=datetime(2026, 12, 3, 6, 0, tzinfo=UTC))
    end_run(ended("TIMED_OUT", scheduled), ledger=ledger, notify=lambda s, b: sent.append(s), now=NOW)
    # No period, no scheduled time: the month before the execution's start
    end_run(ended("TIMED_OUT", StartInput(export=PARTICLE), started=datetime(2027, 1, 1, 0, 5, tzinfo=UTC)),
            ledger=ledger, notify=lambda s, b: sent.append(s), now=NOW + timedelta(days=60))
    assert [f["period"] for f in ledger.args("failed")] == ["2026-11", "2026-12"]
    assert len(sent) == 2 and "timed out" in sent[0]


def test_end_run_does_nothing_when_the_execution_no_longer_held_the_month() -> None:
    ledger, sent = RecordingLedger(failed_answer=False), []
    record = end_run(ended("FAILED", StartInput(export=PARTICLE, period="2026-10")), ledger=ledger,
                     notify=lambda s, b: sent.append(s), now=NOW)
    assert not record.ledger_updated and sent == []


def test_end_run_without_an_input_says_so_instead_of_failing() -> None:
    event = EndRunInput.model_validate({"detail": {"executionArn": ARN, "status": "ABORTED"}})
    record = end_run(event, ledger=RecordingLedger(), notify=None, now=NOW)
    assert record.export is None and not record.ledger_updated
