"""The dashboard, the two alarms that matter (a vendor link about to expire, a month published late), the
hourly WatchRuns rule that feeds them, and the metrics namespace every function emits into."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from exporter_infra import names
from exporter_infra.constructs.monitoring import WATCH_PERIOD
from report_exporter import telemetry
from report_exporter.models.payloads import WatchInput
from tests.infra.conftest import Synth
from tests.infra.support import joined, logical_id, resources

NAMESPACE = "ReportExporter/test"  # the stage of tests/infra/support.py's config


def _dashboard(pipeline: Template) -> tuple[dict[str, Any], dict[str, Any]]:
    (dashboard,) = resources(pipeline, "AWS::CloudWatch::Dashboard")
    body = dashboard["Properties"]["DashboardBody"]
    text = body if isinstance(body, str) else "".join(
        part if isinstance(part, str) else "REF" for part in body["Fn::Join"][1])
    return dashboard["Properties"], json.loads(text)


def _titles(body: dict[str, Any]) -> list[str]:
    return [str(w["properties"].get("title", "")) for w in body["widgets"]]


def _alarm(pipeline: Template, metric: str) -> dict[str, Any]:
    (alarm,) = [a["Properties"] for a in resources(pipeline, "AWS::CloudWatch::Alarm")
                if a["Properties"].get("MetricName") == metric]
    return alarm


def test_the_stage_has_one_dashboard_named_for_it(pipeline: Template) -> None:
    props, body = _dashboard(pipeline)
    assert props["DashboardName"] == "report-exporter-test"
    assert body["start"] == "-P31D"  # opens on the last month


def test_the_dashboard_shows_runs_open_reports_links_volumes_cost_lambdas_and_queues(pipeline: Template) -> None:
    _, body = _dashboard(pipeline)
    titles = " | ".join(_titles(body))
    for expected in ("Runs started per export", "Runs published per export", "Runs failed per export",
                     "Open reports per export", "link expiry headroom", "Rows published per export",
                     "Bytes kept per export", "Estimated AWS cost per export", "Lambda errors", "Lambda duration",
                     "Lambda throttles", "Dead-letter queues", "Alarms"):
        assert expected.lower() in titles.lower(), expected
    text = json.dumps(body)
    # Per-export graphs search the run metrics in the stage's namespace, by export.
    for metric in (telemetry.RUNS_STARTED, telemetry.RUNS_PUBLISHED, telemetry.RUNS_FAILED, telemetry.OPEN_REPORTS,
                   telemetry.OLDEST_OPEN_REPORT_AGE, telemetry.OPEN_LINK_HEADROOM, telemetry.LINK_EXPIRY_HEADROOM,
                   telemetry.ROWS, telemetry.RAW_BYTES, telemetry.PARQUET_BYTES, telemetry.ESTIMATED_COST,
                   telemetry.POLLS, telemetry.TIME_WAITED, telemetry.VENDOR_ERRORS, telemetry.RUN_DURATION):
        assert f'MetricName=\\"{metric}\\"' in text, metric
    assert f"{{{NAMESPACE},export,service,vendor}}" in text
    for metric in ("Errors", "Duration", "Throttles", "ApproximateNumberOfMessagesVisible", "ExecutionsFailed"):
        assert f'"{metric}"' in text, metric


def test_the_dashboard_graphs_every_function_and_both_queues(synth: Synth) -> None:
    _, body = _dashboard(synth.pipeline)
    lambda_widgets = [w for w in body["widgets"] if str(w["properties"].get("title", "")).startswith("Lambda")]
    assert len(lambda_widgets) == 3
    for widget in lambda_widgets:
        assert len(widget["properties"]["metrics"]) == len(names.HANDLERS)
    (queues,) = [w for w in body["widgets"] if str(w["properties"].get("title", "")).startswith("Dead-letter")]
    assert len(queues["properties"]["metrics"]) == 2


def test_the_alarm_widget_lists_every_alarm(pipeline: Template) -> None:
    _, body = _dashboard(pipeline)
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert len(widget["properties"]["alarms"]) == len(resources(pipeline, "AWS::CloudWatch::Alarm"))


def test_link_expiring_and_month_late_alarms_watch_the_watch_runs_counts(pipeline: Template) -> None:
    (topic,) = pipeline.find_resources("AWS::SNS::Topic")
    for metric, words in ((telemetry.LINKS_AT_RISK, "link expires"), (telemetry.MONTHS_LATE, "publish_by_day")):
        alarm = _alarm(pipeline, metric)
        assert alarm["Namespace"] == NAMESPACE
        assert alarm["Dimensions"] == [{"Name": "service", "Value": telemetry.SERVICE}]
        assert (alarm["Statistic"], alarm["Period"]) == ("Maximum", WATCH_PERIOD.to_seconds())
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert alarm["AlarmActions"] == [{"Ref": topic}]
        assert words in alarm["AlarmDescription"]
        assert "export, the month" in alarm["AlarmDescription"]
    assert "24 h" in _alarm(pipeline, telemetry.LINKS_AT_RISK)["AlarmDescription"]


def test_watch_runs_runs_hourly_with_every_export_and_its_due_day(synth: Synth) -> None:
    function = logical_id(synth.built.pipeline.functions.watch_runs)
    (rule,) = [r["Properties"] for r in resources(synth.pipeline, "AWS::Events::Rule")
               if any(t["Arn"] == {"Fn::GetAtt": [function, "Arn"]} for t in r["Properties"].get("Targets", []))]
    assert rule["ScheduleExpression"] == "rate(1 hour)"
    (target,) = rule["Targets"]
    watch = WatchInput.model_validate_json(joined(target["Input"]))
    assert watch.interval_minutes == 60 and watch.link_margin_hours == 24
    assert "{" in watch.state_machine_arn  # the state machine's ARN (a reference)
    by_name = {e.name: e for e in watch.exports}
    assert set(by_name) == {e.name for e in synth.config.exports.exports}
    # particle-fleet fires on day 5 (Berlin): late from day 7; the unscheduled sandbox is never late.
    fleet = by_name["particle-fleet"]
    assert (fleet.publish_by_day, fleet.schedule_timezone) == (7, "Europe/Berlin")
    assert by_name["particle-sandbox"].publish_by_day is None
    assert by_name["kore-account"].publish_by_day == 5


def test_every_function_emits_into_the_stages_metrics_namespace(synth: Synth) -> None:
    for fn in resources(synth.pipeline, "AWS::Lambda::Function"):
        if fn["Properties"]["Handler"].startswith("report_exporter."):
            assert fn["Properties"]["Environment"]["Variables"][telemetry.NAMESPACE_VARIABLE] == NAMESPACE
