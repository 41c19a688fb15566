"""``report-exporter``: run the demo, run one configured export locally, validate a config."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

from report_exporter.clock import SYSTEM, VirtualClock
from report_exporter.errors import ExporterError
from report_exporter.models.exports import ExportsFile, load_exports, previous_period
from report_exporter.stages import PROD, check_stage

DEFAULT_OUT = Path("out")


def _quiet(verbose: bool) -> None:
    """Handler logs go to stdout as JSON in Lambda; locally they drown the summary unless asked for."""
    if not verbose:
        from report_exporter.observability import logger

        logger.setLevel(logging.CRITICAL)
        for name in ("moto", "botocore", "urllib3"):
            logging.getLogger(name).setLevel(logging.CRITICAL)


def _say(line: str = "") -> None:
    print(line, flush=True)


def cmd_demo(args: argparse.Namespace) -> int:
    from report_exporter.local import query
    from report_exporter.local.demo import SIMULATORS, demo_exports
    from report_exporter.local.narrative import describe, table
    from report_exporter.local.runner import LocalEnvironment

    exports = demo_exports()
    chosen = [e for e in exports.exports if not args.vendor or e.vendor_name.value in args.vendor]
    if not chosen:
        _say(f"no demo export for vendor(s) {', '.join(args.vendor)}")
        return 2
    period = args.period or previous_period(SYSTEM.now(), "UTC")
    out = Path(args.out)
    _say("report-exporter demo: each export runs through the real state machine (synthesized from the CDK app)")
    _say("in moto, with its vendor simulated in process. No AWS account, no vendor account. Time is virtual:")
    _say("waits cost no real time.")
    started = time.monotonic()
    failures = 0
    with LocalEnvironment(ExportsFile(exports=tuple(chosen))) as env:
        _say(f"Synthesized the app and created its resources in moto ({time.monotonic() - started:.1f} s).")
        for export in chosen:
            with SIMULATORS[export.vendor_name]() as simulator:
                _say()
                _say(f"{export.name} {period}  ({export.vendor_name.value} simulator)")
                result = env.run(export, period=period, simulator=simulator)
            for line in describe(result):
                _say(line)
            failures += not result.succeeded
        written = env.download(out)
    _say()
    _say(f"{len(written)} objects mirrored under {out}/ (raw/ and curated/, as the S3 keys)")
    con = query.connect(out, exports)
    from report_exporter.datasets import DATASETS
    from report_exporter.focus import VIEW_NAME
    from report_exporter.focus.queries import COST_BY_VENDOR_SERVICE_MONTH

    for export in chosen:
        for dataset in DATASETS.values():
            if dataset.vendor is export.vendor_name and dataset.queries and (out / "curated" / dataset.name).exists():
                named = dataset.queries[0]
                columns, rows = query.rows(con, named.sql)
                _say()
                _say(f"Athena named query {named.name!r} ({named.description}), run with DuckDB:")
                for line in table(columns, rows):
                    _say(line)
    # One answer across vendors: the FOCUS view over every table above, priced by the demo's rate cards.
    columns, rows = query.rows(con, COST_BY_VENDOR_SERVICE_MONTH.sql)
    _say()
    _say(f"Across vendors, from the {VIEW_NAME} view (FOCUS columns): Athena named query "
         f"{COST_BY_VENDOR_SERVICE_MONTH.name!r} ({COST_BY_VENDOR_SERVICE_MONTH.description}), run with DuckDB:")
    for line in table(columns, rows):
        _say(line)
    return 1 if failures else 0


def _secrets(path: str | None) -> dict[str, dict[str, str]]:
    raw = os.environ.get("REPORT_EXPORTER_SECRETS")
    if path:
        raw = Path(path).read_text(encoding="utf-8")
    if not raw:
        return {}
    parsed = json.loads(raw)
    if not isinstance(parsed, dict) or not all(isinstance(v, dict) for v in parsed.values()):
        raise ExporterError("secrets must be a JSON object: {\"<secret name>\": {\"field\": \"value\"}}")
    return parsed


def cmd_run(args: argparse.Namespace) -> int:
    from report_exporter.local.narrative import describe
    from report_exporter.local.persist import LocalState
    from report_exporter.local.runner import LocalEnvironment

    exports = load_exports(Path(args.config))
    export = exports.get(args.export)
    secrets = _secrets(args.secrets)
    if export.secret_name not in secrets:
        raise ExporterError(
            f"no credentials for secret {export.secret_name!r}: pass --secrets FILE (JSON object keyed by secret "
            "name) or set REPORT_EXPORTER_SECRETS"
        )
    # Against a vendor, waits really elapse; --virtual-time is for a simulator that does not care.
    clock = VirtualClock(SYSTEM.now()) if args.virtual_time else SYSTEM
    timeout = args.timeout
    if timeout is None and not args.virtual_time:
        # The report deadline, plus room for the download and the conversion.
        timeout = export.report_deadline_minutes * 60 + 3600
    with ExitStack() as stack:
        # The ledger and the objects are kept under --out as the run goes: a rerun after a kill resumes.
        state = stack.enter_context(LocalState(Path(args.out), fresh=args.fresh))
        env = stack.enter_context(LocalEnvironment(ExportsFile(exports=(export,)), clock=clock, progress=_say,
                                                   state=state))
        env.put_secret(export.secret_name, secrets[export.secret_name])
        time_note = "virtual time" if args.virtual_time else "real time: waits really elapse"
        _say(f"{export.name} {args.period}: running against {export.resolved_base_url()} ({time_note})")
        result = env.run(export, period=args.period, timeout=timeout)
        for line in describe(result):
            _say(line)
        written = env.download(Path(args.out), skip=state.mirrored)
    _say(f"{len(written) + len(state.mirrored)} objects mirrored under {args.out}/")
    if not result.succeeded:
        print(f"report-exporter: {export.name} {args.period} failed: {result.error}: {_cause(result.cause)}",
              file=sys.stderr)
        return 1
    return 0


def _cause(cause: str | None) -> str:
    try:
        return str(json.loads(cause or "")["errorMessage"])
    except (ValueError, KeyError, TypeError):
        return cause or ""


def cmd_validate(args: argparse.Namespace) -> int:
    exports = load_exports(Path(args.config))
    for export in exports.exports:
        s = export.schedule
        when = f"day {s.day_of_month} {s.hour:02d}:{s.minute:02d} {s.timezone}" if s.enabled else "not scheduled"
        _say(f"{export.name}: {export.vendor_name.value}, secret {export.secret_name}, {when}")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    from report_exporter.local import operate

    export = operate.deployed_export(load_exports(Path(args.config)).get(args.export), args.stage)
    periods = list(operate.months(args.from_period, args.to_period))
    if args.dry_run:
        for period in periods:
            _say(f"{export.name}-{period}: {operate.execution_input(export, period)}")
        return 0
    arn = args.state_machine_arn or operate.stack_output(operate.pipeline_stack(args.stage),
                                                          operate.STATE_MACHINE_OUTPUT, region=args.region)
    for started in operate.backfill(export, periods, state_machine_arn=arn, region=args.region):
        _say(f"{started.name}: started  {operate.link(started.arn)}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from report_exporter.local import operate
    from report_exporter.local.narrative import table

    name = args.table or operate.stack_output(operate.storage_stack(args.stage), operate.LEDGER_OUTPUT,
                                              region=args.region)
    rows = operate.status_lines(operate.ledger_rows(name, args.export, region=args.region))
    if not rows:
        _say("no runs recorded yet")
        return 0
    for line in table(operate.STATUS_COLUMNS, rows, limit=args.limit):
        _say(line)
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from report_exporter.local import operate

    export = operate.deployed_export(load_exports(Path(args.config)).get(args.export), args.stage)
    table = args.table or operate.stack_output(operate.storage_stack(args.stage), operate.LEDGER_OUTPUT,
                                               region=args.region)
    function = args.function_name or operate.stack_output(operate.pipeline_stack(args.stage),
                                                          operate.WRITE_PARQUET_OUTPUT, region=args.region)
    result = operate.replay(export, args.period, table=table, function_name=function, now=SYSTEM.now(),
                            region=args.region)
    for obj in result.get("objects", []):
        _say(f"{obj['key']}: {obj['rows']:,} rows rebuilt from the kept raw file(s)")
    return 0


def _stage(value: str) -> str:
    try:
        return check_stage(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _stage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", type=_stage, default=PROD,
                        help=f"the deployed stage (default {PROD}): its stacks are ReportExporterStorage-<stage> "
                             "and ReportExporterPipeline-<stage> (no suffix for prod), the secrets it creates "
                             "<stage>/<secret_name>")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="report-exporter", description=__doc__)
    parser.add_argument("--verbose", action="store_true", help="show the handlers' JSON logs")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the demo exports against the built-in vendor simulators")
    demo.add_argument("--vendor", action="append", help="only this vendor (repeatable)")
    demo.add_argument("--period", help="month to export, YYYY-MM (default: last month)")
    demo.add_argument("--out", default=str(DEFAULT_OUT / "demo"), help="folder mirroring the S3 keys")
    demo.set_defaults(func=cmd_demo)
    run = sub.add_parser("run", help="run one configured export locally against the base URL it names")
    run.add_argument("--config", required=True, help="exports TOML file")
    run.add_argument("--export", required=True, help="export name")
    run.add_argument("--period", required=True, help="month to export, YYYY-MM")
    run.add_argument("--out", default=str(DEFAULT_OUT),
                     help="folder mirroring the S3 keys; holds the run's state too (.state/): a rerun resumes")
    run.add_argument("--secrets", help="JSON file: {secret name: {field: value}} (or env REPORT_EXPORTER_SECRETS)")
    run.add_argument("--fresh", action="store_true",
                     help="forget the state an earlier run left under --out (its open report) and start over")
    run.add_argument("--timeout", type=float, default=None,
                     help="wall-clock seconds before giving up (default: the export's report deadline + 1 h)")
    run.add_argument("--virtual-time", action="store_true",
                     help="waits take no real time (only for a simulator: a real vendor needs the real waits)")
    run.set_defaults(func=cmd_run)
    backfill = sub.add_parser("backfill", help="start one execution per past month on the deployed state machine")
    backfill.add_argument("--config", required=True, help="exports TOML file")
    backfill.add_argument("--export", required=True, help="export name")
    backfill.add_argument("--from", dest="from_period", required=True, help="first month, YYYY-MM")
    backfill.add_argument("--to", dest="to_period", required=True, help="last month, YYYY-MM")
    _stage_option(backfill)
    backfill.add_argument("--state-machine-arn", help="default: the stage's pipeline stack's output")
    backfill.add_argument("--region", help="AWS region (default: your AWS configuration)")
    backfill.add_argument("--dry-run", action="store_true", help="print the execution inputs, start nothing")
    backfill.set_defaults(func=cmd_backfill)
    status = sub.add_parser("status", help="what the ledger says about each export and month")
    status.add_argument("--export", help="only this export")
    _stage_option(status)
    status.add_argument("--table", help="ledger table (default: the stage's storage stack's output)")
    status.add_argument("--region", help="AWS region (default: your AWS configuration)")
    status.add_argument("--limit", type=int, default=50)
    status.set_defaults(func=cmd_status)
    replay = sub.add_parser("replay", help="rebuild a month's Parquet from its kept raw files (no vendor call)")
    replay.add_argument("--config", required=True, help="exports TOML file")
    replay.add_argument("--export", required=True, help="export name")
    replay.add_argument("--period", required=True, help="month, YYYY-MM")
    _stage_option(replay)
    replay.add_argument("--table", help="ledger table (default: the stage's storage stack's output)")
    replay.add_argument("--function-name", help="WriteParquet function (default: the stage's pipeline stack's output)")
    replay.add_argument("--region", help="AWS region (default: your AWS configuration)")
    replay.set_defaults(func=cmd_replay)
    validate = sub.add_parser("validate", help="check an exports TOML file")
    validate.add_argument("--config", required=True)
    validate.set_defaults(func=cmd_validate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet(args.verbose)
    try:
        return int(args.func(args))
    except ExporterError as exc:
        print(f"report-exporter: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"report-exporter: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
