"""RecordFailure and EndRun: what is recorded, released and alerted when a run fails or dies."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from report_exporter.logic.end_run import end_run
from report_exporter.logic.record_failure import console_link, record_failure
from report_exporter.models.exports import ParticleExport, TelnyxExport
from report_exporter.models.payloads import EndRunInput, EndRunRecord, FailureInput, FailureRecord, StartInput
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
            ledger=ledger, notify=lambda s, b: sent.append(s), now=NOW + timedelta(days=100))
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


def state(cause: str, **extra: object) -> FailureInput:
    return FailureInput.model_validate({"state": {"error": {"Error": "InvalidReportError", "Cause": cause}, **extra}})


@pytest.mark.parametrize(("cause", "message"), [
    (json.dumps({"errorType": "X", "errorMessage": "bad row 7", "stackTrace": ["a"]}), "bad row 7"),
    (json.dumps({"errorType": "X", "errorMessage": "m" * 2000}), "m" * 1500),
    (json.dumps({"errorType": "X", "errorMessage": 42}), json.dumps({"errorType": "X", "errorMessage": 42})),
    (json.dumps(["errorMessage"]), json.dumps(["errorMessage"])),
    ("States.Timeout: " + "t" * 2000, ("States.Timeout: " + "t" * 2000)[:1500]),
    ("", ""),
])
def test_the_message_is_the_lambda_errors_own_message_cut_to_1500_characters(cause: str, message: str) -> None:
    record = record_failure(state(cause, period="2026-10"), notify=None, ledger=RecordingLedger(), now=NOW)
    assert record.message == message


def test_a_failure_is_recorded_and_alerted_in_full() -> None:
    ledger, sent = RecordingLedger(), []
    event = failure()
    record = record_failure(event, notify=lambda s, b: sent.append((s, b)), ledger=ledger, now=NOW)
    assert ledger.args("failed") == [{"export": "particle-demo", "period": "2026-10", "execution": ARN,
                                      "error": "ReportFailedError", "message": "the vendor says failed",
                                      "only_if_owner": False, "now": NOW}]
    assert ledger.args("release_slot") == [{"account": PARTICLE.account_key(), "execution": ARN}]
    assert sent == [("report-exporter: particle-demo 2026-10 failed: ReportFailedError", "\n".join([
        "Export:    particle-demo",
        "Period:    2026-10",
        "Error:     ReportFailedError",
        "Message:   the vendor says failed",
        "Execution: https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/"
        + ARN,
    ]))]
    assert record == FailureRecord(export="particle-demo", period="2026-10", error="ReportFailedError",
                                   message="the vendor says failed", execution_id=ARN, notified=True,
                                   ledger_updated=True, recorded_at=NOW)


def test_the_execution_of_the_event_is_the_one_recorded_and_whose_slot_is_freed() -> None:
    ledger = RecordingLedger()
    event = failure().model_copy(update={"execution_id": "arn:aws:states:eu-west-1:1:execution:m:retry-2"})
    record = record_failure(event, notify=None, ledger=ledger, now=NOW)
    assert record.execution_id == "arn:aws:states:eu-west-1:1:execution:m:retry-2"
    assert ledger.args("failed")[0]["execution"] == record.execution_id
    assert ledger.args("release_slot")[0]["execution"] == record.execution_id


def test_a_failure_before_planning_names_the_export_from_the_input_and_alerts_without_a_period() -> None:
    # Given PlanRun failed: no plan, the raw export input, no period, no execution id
    ledger, sent = RecordingLedger(), []
    event = state("the month has not ended yet", export={"name": "particle-demo"})
    record = record_failure(event, notify=lambda s, b: sent.append((s, b)), ledger=ledger, now=NOW)
    # Then nothing is written to the ledger (no month to fail) and the alert says what is unknown
    assert ledger.calls == []
    ((subject, body),) = sent
    assert subject == "report-exporter: particle-demo  failed: InvalidReportError"
    assert "Period:    (not planned)" in body.splitlines()
    assert body.splitlines()[-1] == "Execution: (unknown)"
    assert (record.export, record.period, record.execution_id, record.ledger_updated) == (
        "particle-demo", None, "", False)


def test_a_failure_without_any_export_is_recorded_as_unknown_with_the_period_it_had() -> None:
    ledger = RecordingLedger()
    record = record_failure(state("x", period="2026-09"), notify=None, ledger=ledger, now=NOW)
    assert (record.export, record.period) == ("unknown", "2026-09")
    assert ledger.args("failed")[0]["export"] == "unknown"


def test_a_long_alert_subject_is_cut_to_100_characters() -> None:
    sent: list[str] = []
    record_failure(failure(error="E" * 200), notify=lambda s, b: sent.append(s), ledger=RecordingLedger(), now=NOW)
    assert sent == [("report-exporter: particle-demo 2026-10 failed: " + "E" * 200)[:100]]


@pytest.mark.parametrize(("execution", "link"), [
    ("arn:aws:states:eu-west-1:123:execution:m:x",
     "https://eu-west-1.console.aws.amazon.com/states/home?region=eu-west-1#/v2/executions/details/"
     "arn:aws:states:eu-west-1:123:execution:m:x"),
    ("arn:aws:states::123:execution:m:x",
     "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/"
     "arn:aws:states::123:execution:m:x"),
    ("local-run", "https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/"
                  "local-run"),
])
def test_console_link_opens_the_execution_in_its_region(execution: str, link: str) -> None:
    assert console_link(execution) == link


@pytest.mark.parametrize(("status", "error", "why", "subject"), [
    ("FAILED", "ExecutionFailed", "failed without recording it (RecordFailure did not run or failed)", "failed"),
    ("TIMED_OUT", "ExecutionTimedOut", "hit the state machine's timeout", "timed out"),
    ("PAUSED_FOR_EVER", "ExecutionPaused_For_Ever", "paused_for_ever", "paused for ever"),
    ("WAITING_FOR_A_VERY_LONG_TIME_FOR_SOMETHING_THAT_NEVER_CAME_BACK",
     "ExecutionWaiting_For_A_Very_Long_Time_For_Something_That_Never_Came_Back",
     "waiting_for_a_very_long_time_for_something_that_never_came_back",
     "waiting for a very long time for something that never came back"),
])
def test_end_run_records_and_alerts_what_happened_to_the_execution(status: str, error: str, why: str,
                                                                  subject: str) -> None:
    ledger, sent = RecordingLedger(), []
    record = end_run(ended(status, StartInput(export=PARTICLE, period="2026-10")), ledger=ledger,
                     notify=lambda s, b: sent.append((s, b)), now=NOW)
    message = f"execution particle-demo-2026-10 {why}"
    assert ledger.args("failed") == [{"export": "particle-demo", "period": "2026-10", "execution": ARN,
                                      "error": error, "message": message, "only_if_owner": True, "now": NOW}]
    assert [s for s, _ in sent] == [f"report-exporter: particle-demo 2026-10 {subject}"[:100]]
    assert sent == [(sent[0][0], "\n".join([
        "Export:    particle-demo",
        "Period:    2026-10",
        f"Error:     {error}",
        f"Message:   {message}; its slot and lease were released, the next run requests a fresh report",
        "Execution: https://us-east-1.console.aws.amazon.com/states/home?region=us-east-1#/v2/executions/details/"
        + ARN,
    ]))]
    assert record == EndRunRecord(export="particle-demo", period="2026-10", execution_id=ARN, status=status,
                                  ledger_updated=True, notified=True)


def test_end_run_of_an_uncapped_export_frees_no_slot_and_alerts_nobody_without_a_topic() -> None:
    telnyx = TelnyxExport(name="telnyx-x", secret_name="s", product="messaging", dimensions=("direction",),
                          metrics=("cost",))
    ledger = RecordingLedger()
    record = end_run(ended("TIMED_OUT", StartInput(export=telnyx, period="2026-10")), ledger=ledger, notify=None,
                     now=NOW)
    assert ledger.args("ended")[0]["account"] is None
    assert record.ledger_updated and not record.notified


def test_end_run_without_a_start_date_takes_the_month_before_now() -> None:
    ledger = RecordingLedger()
    event = EndRunInput.model_validate({"detail": {"executionArn": ARN, "status": "TIMED_OUT",
                                                   "input": StartInput(export=PARTICLE).model_dump_json()}})
    end_run(event, ledger=ledger, notify=None, now=datetime(2027, 3, 1, 0, 1, tzinfo=UTC))
    assert ledger.args("failed")[0]["period"] == "2027-02"


def test_end_run_with_an_unreadable_input_touches_nothing() -> None:
    ledger = RecordingLedger()
    event = EndRunInput.model_validate({"detail": {"executionArn": ARN, "status": "FAILED", "input": "{\"x\": 1}"}})
    record = end_run(event, ledger=ledger, notify=lambda s, b: None, now=NOW)
    assert ledger.calls == []
    assert record == EndRunRecord(export=None, period=None, execution_id=ARN, status="FAILED", ledger_updated=False,
                                  notified=False)
