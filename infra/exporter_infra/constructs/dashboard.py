"""The operators' CloudWatch dashboard: runs, open reports, vendor links, volumes, cost, Lambdas, queues, alarms.

Per-export graphs use CloudWatch SEARCH expressions over the run metrics (``report_exporter.telemetry``,
dimensions ``export``, ``vendor`` and Powertools' ``service``), so an export added to the config shows
up without a redeploy of the dashboard. The dashboard opens on the last 31 days; graphs marked "over the
time range" add up the whole range (a calendar month when the range is set to one).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from report_exporter import telemetry

DEFAULT_RANGE = Duration.days(31)
WIDTH = 24
HALF = 12
THIRD = 8
HEIGHT = 6


def search(namespace: str, metric: str, statistic: str, period: Duration, label: str = "") -> cloudwatch.MathExpression:
    """Every export's series of ``metric`` (one line or bar per export)."""
    schema = f"{{{namespace},export,service,vendor}}"
    return cloudwatch.MathExpression(
        expression=f"SEARCH('{schema} MetricName=\"{metric}\"', '{statistic}', {int(period.to_seconds())})",
        using_metrics={},
        label=label,
        period=period,
    )


class Dashboard(Construct):
    """One dashboard per stage (named ``report-exporter-<stage>``)."""

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        dashboard_name: str,
        metrics_namespace: str,
        state_machine: sfn.StateMachine,
        functions: Mapping[str, lambda_.IFunction],
        queues: Mapping[str, sqs.IQueue],
        alarms: Sequence[cloudwatch.IAlarm],
        link_margin_hours: int,
    ) -> None:
        super().__init__(scope, id_)
        ns = metrics_namespace
        hour, day = Duration.hours(1), Duration.days(1)
        # Whole-range sums: one bar per export for the dashboard's time range.
        month = Duration.days(30)

        def over_range(title: str, *series: cloudwatch.IMetric, width: int = THIRD) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=list(series), view=cloudwatch.GraphWidgetView.BAR,
                                          set_period_to_time_range=True, width=width, height=HEIGHT)

        margin = cloudwatch.HorizontalAnnotation(value=link_margin_hours * 3600, label="alert margin",
                                                 color=cloudwatch.Color.RED)
        fns = sorted(functions.items())
        self.dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            dashboard_name=dashboard_name,
            default_interval=DEFAULT_RANGE,
            widgets=[
                [cloudwatch.TextWidget(
                    markdown=f"# {dashboard_name}\nRuns per export this month (set the time range to the month), "
                             "what is waiting at the vendors, how close ready reports are to losing their download "
                             "link, what was exported and what it cost, and the health of the Lambdas and queues. "
                             "`report-exporter status` shows the same per month from the ledger.",
                    width=WIDTH, height=2)],
                [
                    over_range("Runs started per export (over the time range)",
                               search(ns, telemetry.RUNS_STARTED, "Sum", month)),
                    over_range("Runs published per export (over the time range)",
                               search(ns, telemetry.RUNS_PUBLISHED, "Sum", month)),
                    over_range("Runs failed per export (over the time range)",
                               search(ns, telemetry.RUNS_FAILED, "Sum", month)),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Open reports per export (requested, not yet published or failed)",
                        left=[search(ns, telemetry.OPEN_REPORTS, "Maximum", hour)],
                        right=[search(ns, telemetry.OLDEST_OPEN_REPORT_AGE, "Maximum", hour, "oldest, s")],
                        width=HALF, height=HEIGHT),
                    cloudwatch.GraphWidget(
                        title="Vendor link expiry headroom (s): ready reports waiting, and at download",
                        left=[search(ns, telemetry.OPEN_LINK_HEADROOM, "Minimum", hour, "waiting"),
                              search(ns, telemetry.LINK_EXPIRY_HEADROOM, "Minimum", day, "at download")],
                        left_annotations=[margin], width=HALF, height=HEIGHT),
                ],
                [
                    over_range("Rows published per export (over the time range)",
                               search(ns, telemetry.ROWS, "Sum", month)),
                    over_range("Bytes kept per export: raw and Parquet (over the time range)",
                               search(ns, telemetry.RAW_BYTES, "Sum", month, "raw"),
                               search(ns, telemetry.PARQUET_BYTES, "Sum", month, "parquet")),
                    over_range("Estimated AWS cost per export, USD (over the time range)",
                               search(ns, telemetry.ESTIMATED_COST, "Sum", month)),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Polls, time waited (s) and vendor errors",
                        left=[search(ns, telemetry.POLLS, "Sum", day, "polls"),
                              cloudwatch.MathExpression(
                                  expression=f"SEARCH('{{{ns},error,export,service,vendor}} "
                                             f"MetricName=\"{telemetry.VENDOR_ERRORS}\"', 'Sum', 86400)",
                                  using_metrics={}, label="errors", period=day)],
                        right=[search(ns, telemetry.TIME_WAITED, "Sum", day, "waited")],
                        width=HALF, height=HEIGHT),
                    cloudwatch.GraphWidget(
                        title="Executions",
                        left=[state_machine.metric_started(period=hour, statistic="Sum", label="started"),
                              state_machine.metric_succeeded(period=hour, statistic="Sum", label="succeeded"),
                              state_machine.metric_failed(period=hour, statistic="Sum", label="failed"),
                              state_machine.metric_timed_out(period=hour, statistic="Sum", label="timed out")],
                        right=[search(ns, telemetry.RUN_DURATION, "Maximum", hour, "run duration, s")],
                        width=HALF, height=HEIGHT),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Lambda errors",
                        left=[fn.metric_errors(period=hour, statistic="Sum", label=name) for name, fn in fns],
                        width=THIRD, height=HEIGHT),
                    cloudwatch.GraphWidget(
                        title="Lambda duration, p95 (ms)",
                        left=[fn.metric_duration(period=hour, statistic="p95", label=name) for name, fn in fns],
                        width=THIRD, height=HEIGHT),
                    cloudwatch.GraphWidget(
                        title="Lambda throttles",
                        left=[fn.metric_throttles(period=hour, statistic="Sum", label=name) for name, fn in fns],
                        width=THIRD, height=HEIGHT),
                ],
                [
                    cloudwatch.GraphWidget(
                        title="Dead-letter queues: messages waiting",
                        left=[queue.metric_approximate_number_of_messages_visible(
                            period=Duration.minutes(5), statistic="Maximum", label=name)
                              for name, queue in sorted(queues.items())],
                        width=HALF, height=HEIGHT),
                    cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=HALF, height=HEIGHT),
                ],
            ],
        )
