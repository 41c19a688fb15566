"""The report-exporter command: run exports locally, operate a deployed stage, check a config."""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import re
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, NoReturn

from report_exporter.clock import SYSTEM, VirtualClock
from report_exporter.errors import ExporterError
from report_exporter.models.exports import ExportsFile, VendorName, load_exports, previous_period
from report_exporter.models.exports.base import PERIOD_PATTERN
from report_exporter.stages import PROD, check_stage

DEFAULT_OUT = Path("out")
LEDGER_FILE = "ledger.json"

# Exit codes (README "Exit codes"); every failure prints one line on stderr, never a traceback.
OK = 0
FAILED = 1
"""The work ran and failed: an export's run ended FAILED or TIMED_OUT, or `run` gave up waiting."""
USAGE = 2
"""Bad command line or input: unknown option, a period that is not YYYY-MM, an unknown export, a bad config."""
AWS = 3
"""AWS could not be used: no credentials or region, access denied, a stack or table that does not exist."""
MISSING_EXTRA = 4
"""`demo` and `run` need the `local` extra (pip install 'report-exporter[local]')."""
INTERNAL = 70
"""A bug: an unexpected error (--verbose shows its traceback)."""
INTERRUPTED = 130
"""Ctrl-C."""

# What `demo` and `run` import beyond the operator commands' needs, and the extra that brings it.
LOCAL_EXTRA = "local"
LOCAL_MODULES = ("moto", "duckdb", "aws_cdk", "cdk_nag", "pyarrow", "httpx", "aws_lambda_powertools")

DESCRIPTION = """\
Export vendor usage reports with the serverless exporter: run exports locally, watch and backfill a
deployed stage, and check an exports config."""

EPILOG = """\
commands, by what they need:
  validate                             checks an exports file; needs nothing more
  status, backfill, replay             operate a deployed stage; need AWS credentials (not
                                       status --local, not backfill --dry-run)
  demo, run                            run the real state machine locally in moto; need the
                                       'local' extra: pip install 'report-exporter[local]'

exit codes:
  0    success
  1    the work failed: a run ended FAILED or TIMED_OUT, or `run` gave up waiting
  2    bad command line or input: unknown option, bad period (use YYYY-MM), unknown export, bad config
  3    AWS could not be used: no credentials or region, access denied, stack or table not found
  4    `demo` or `run` without the 'local' extra installed
  70   unexpected error (a bug; --verbose shows the traceback)
  130  interrupted

Every failure prints one line on stderr. --json (run, status, backfill, validate) prints one JSON
document on stdout; progress and errors still go to stderr."""


class MissingExtraError(Exception):
    """A command needs packages that only an extra of the project installs."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (with a hint to --help) instead of the whole usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("report-exporter")
    except PackageNotFoundError:
        from report_exporter import __version__

        return __version__


def _quiet(verbose: bool) -> None:
    """Handler logs go to stdout as JSON in Lambda; locally they drown the summary unless asked for."""
    if verbose:
        return
    for name in ("moto", "botocore", "urllib3"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    if importlib.util.find_spec("aws_lambda_powertools") is not None:
        from report_exporter.observability import logger

        logger.setLevel(logging.CRITICAL)


def _say(line: str = "") -> None:
    print(line, flush=True)


def _json(document: Any) -> None:
    print(json.dumps(document, indent=2, default=str), flush=True)


def _need_local_extra(command: str) -> None:
    missing = [m for m in LOCAL_MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise MissingExtraError(
            f"`{command}` needs the '{LOCAL_EXTRA}' extra (missing: {', '.join(missing)}): "
            f"pip install 'report-exporter[{LOCAL_EXTRA}]' (or uv tool install 'report-exporter[{LOCAL_EXTRA}]')"
        )


def cmd_demo(args: argparse.Namespace) -> int:
    _need_local_extra("demo")
    from report_exporter.local import query
    from report_exporter.local.demo import SIMULATORS, demo_exports
    from report_exporter.local.narrative import describe, table
    from report_exporter.local.runner import LocalEnvironment

    exports = demo_exports()
    chosen = [e for e in exports.exports if not args.vendor or e.vendor_name.value in args.vendor]
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
            for line in describe(result, env.ledger_item(export.name, period)):
                _say(line)
            failures += not result.succeeded
        written = env.download(out)
        ledger = env.save_ledger(out / LEDGER_FILE)
    _say()
    _say(f"{len(written)} objects mirrored under {out}/ (raw/ and curated/, as the S3 keys)")
    _say(f"The ledger, with each run's metrics and estimated cost: {ledger} (report-exporter status --local {out})")
    con = query.connect(out, exports)
    from report_exporter.datasets.registry import DATASETS
    from report_exporter.focus.queries import COST_BY_VENDOR_SERVICE_MONTH
    from report_exporter.focus.view import VIEW_NAME

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
    return FAILED if failures else OK


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
    _need_local_extra("run")
    from report_exporter.local import operate
    from report_exporter.local.narrative import describe
    from report_exporter.local.persist import LocalState
    from report_exporter.local.progress import Progress
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
    # --json keeps stdout for the document: what the run says while it works goes to stderr.
    report = sys.stderr if args.json else sys.stdout
    with ExitStack() as stack:
        # The ledger and the objects are kept under --out as the run goes: a rerun after a kill resumes.
        state = stack.enter_context(LocalState(Path(args.out), fresh=args.fresh))
        progress = stack.enter_context(Progress(report))
        env = stack.enter_context(LocalEnvironment(ExportsFile(exports=(export,)), clock=clock, progress=progress,
                                                   state=state))
        env.put_secret(export.secret_name, secrets[export.secret_name])
        time_note = "virtual time" if args.virtual_time else "real time: waits really elapse"
        progress.line(f"{export.name} {args.period}: running against {export.resolved_base_url()} ({time_note})")
        if (left := env.left_open(export.name, args.period)) is not None:
            name, item = left
            progress.line(f"{name}: resuming the execution an earlier run left with report "
                          f"{item.get('report_id') or item.get('job')} {item.get('status')} (state in {state.dir})")
        result = env.run(export, period=args.period, timeout=timeout)
        progress.close()
        item = env.ledger_item(export.name, args.period)
        if not args.json:
            for line in describe(result, item):
                _say(line)
        written = env.download(Path(args.out), skip=state.mirrored)
        env.save_ledger(Path(args.out) / LEDGER_FILE)
    if args.json:
        _json({
            "export": export.name, "period": args.period, "status": result.status, "succeeded": result.succeeded,
            "execution": result.execution_arn, "error": result.error, "message": _cause(result.cause) or None,
            "waits": result.waits, "seconds": round(result.seconds, 3),
            "elapsed_seconds": result.elapsed.total_seconds(), "objects_written": len(written) + len(state.mirrored),
            "run": operate.run_record(item),
        })
    else:
        _say(f"{len(written) + len(state.mirrored)} objects mirrored under {args.out}/")
    if not result.succeeded:
        print(f"report-exporter: {export.name} {args.period} failed: {result.error}: {_cause(result.cause)}",
              file=sys.stderr)
        return FAILED
    return OK


def _cause(cause: str | None) -> str:
    try:
        return str(json.loads(cause or "")["errorMessage"])
    except (ValueError, KeyError, TypeError):
        return cause or ""


def cmd_validate(args: argparse.Namespace) -> int:
    exports = load_exports(Path(args.config))
    if args.json:
        _json({"config": args.config, "exports": [{
            "name": e.name, "vendor": e.vendor_name.value, "secret_name": e.secret_name,
            "schedule": e.schedule.model_dump(mode="json") if e.schedule.enabled else None,
            "publish_by_day": e.publish_by(),
        } for e in exports.exports]})
        return OK
    for export in exports.exports:
        s = export.schedule
        when = f"day {s.day_of_month} {s.hour:02d}:{s.minute:02d} {s.timezone}" if s.enabled else "not scheduled"
        due = export.publish_by()
        late = f", late from day {due}" if due is not None else ""
        _say(f"{export.name}: {export.vendor_name.value}, secret {export.secret_name}, {when}{late}")
    return OK


def cmd_backfill(args: argparse.Namespace) -> int:
    from report_exporter.local import operate
    from report_exporter.local.progress import Progress

    export = operate.deployed_export(load_exports(Path(args.config)).get(args.export), args.stage)
    periods = list(operate.months(args.from_period, args.to_period))
    if args.dry_run:
        if args.json:
            _json({"export": export.name, "stage": args.stage, "dry_run": True, "executions": [
                {"period": p, "name": f"{export.name}-{p}", "input": json.loads(operate.execution_input(export, p))}
                for p in periods]})
            return OK
        for period in periods:
            _say(f"{export.name}-{period}: {operate.execution_input(export, period)}")
        return OK
    arn = args.state_machine_arn or operate.stack_output(operate.pipeline_stack(args.stage),
                                                          operate.STATE_MACHINE_OUTPUT, region=args.region)
    with Progress(sys.stderr if args.json else sys.stdout) as progress:
        count = 0

        def started(execution: operate.Started) -> None:
            nonlocal count
            count += 1
            if not args.json:
                progress.line(f"{execution.name}: started  {operate.link(execution.arn)}")
            if progress.live or args.json:
                progress(f"backfill {export.name}: {count}/{len(periods)} started")

        executions = operate.backfill(export, periods, state_machine_arn=arn, region=args.region, on_start=started)
    if args.json:
        _json({"export": export.name, "stage": args.stage, "dry_run": False, "executions": [
            {"period": e.period, "name": e.name, "arn": e.arn, "console": operate.link(e.arn)} for e in executions]})
    return OK


def cmd_status(args: argparse.Namespace) -> int:
    from report_exporter.local import operate
    from report_exporter.local.narrative import table

    if args.local:
        items = [i for i in operate.local_ledger(args.local) if not args.export or i.get("export") == args.export]
    else:
        name = args.table or operate.stack_output(operate.storage_stack(args.stage), operate.LEDGER_OUTPUT,
                                                  region=args.region)
        items = operate.ledger_rows(name, args.export, region=args.region)
    if args.json:
        _json({"runs": [operate.run_record(item) for item in items[: args.limit]]})
        return OK
    rows = operate.status_lines(items)
    if not rows:
        _say("no runs recorded yet")
        return OK
    for line in table(operate.STATUS_COLUMNS, rows, limit=args.limit):
        _say(line)
    return OK


def cmd_replay(args: argparse.Namespace) -> int:
    from report_exporter.local import operate

    storage = operate.storage_stack(args.stage)
    raw_bucket = args.raw_bucket or operate.stack_output(storage, operate.RAW_BUCKET_OUTPUT, region=args.region)
    table = args.table or operate.stack_output(storage, operate.LEDGER_OUTPUT, region=args.region)
    function = args.function_name or operate.stack_output(operate.pipeline_stack(args.stage),
                                                          operate.WRITE_PARQUET_OUTPUT, region=args.region)
    result = operate.replay(args.export, args.period, raw_bucket=raw_bucket, table=table, function_name=function,
                            now=SYSTEM.now(), region=args.region)
    for obj in result.get("objects", []):
        _say(f"{obj['key']}: {obj['rows']:,} rows rebuilt from the kept raw file(s)")
    return OK


def _stage(value: str) -> str:
    try:
        return check_stage(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _period(value: str) -> str:
    if not re.match(PERIOD_PATTERN, value):
        raise argparse.ArgumentTypeError(f"{value!r} is not a month: write it as YYYY-MM, e.g. 2026-05")
    return value


def _positive(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive whole number")
    return int(value)


def _stage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stage", type=_stage, default=PROD,
                        help=f"the deployed stage (default {PROD}): its stacks are ReportExporterStorage-<stage> "
                             "and ReportExporterPipeline-<stage> (no suffix for prod), the secrets it creates "
                             "<stage>/<secret_name>")


def _json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as one JSON document on stdout")


def _command(sub: Any, name: str, summary: str, details: str, func: Callable[[argparse.Namespace], int],
             ) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=summary, description=f"{summary}. {details}")
    parser.set_defaults(func=func)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="report-exporter", description=DESCRIPTION, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--verbose", action="store_true", help="show the handlers' JSON logs and tracebacks")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _command(sub, "demo", "Run every demo export end to end locally, against built-in vendor simulators",
                    "The synthesized state machine runs in moto on virtual time; prints each step, the run's "
                    "estimated AWS cost and a named query's answer, and writes the S3 objects and the ledger "
                    "under --out. Needs the 'local' extra.", cmd_demo)
    demo.add_argument("--vendor", action="append", choices=sorted(v.value for v in VendorName),
                      help="only this vendor's demo export (repeatable)")
    demo.add_argument("--period", type=_period, help="month to export, YYYY-MM (default: last month)")
    demo.add_argument("--out", default=str(DEFAULT_OUT / "demo"), help="folder mirroring the S3 keys")

    run = _command(sub, "run", "Run one configured export for one month locally, against the base URL it names",
                   "The synthesized state machine runs in moto; waits really elapse unless --virtual-time. Shows "
                   "a live line while it waits (plain lines when stdout is not a terminal). Exits 1 if the run "
                   "fails. Needs the 'local' extra.", cmd_run)
    run.add_argument("--config", required=True, help="exports TOML file")
    run.add_argument("--export", required=True, help="export name")
    run.add_argument("--period", required=True, type=_period, help="month to export, YYYY-MM")
    run.add_argument("--out", default=str(DEFAULT_OUT),
                     help="folder mirroring the S3 keys; holds the run's state too (.state/): a rerun resumes")
    run.add_argument("--secrets", help="JSON file: {secret name: {field: value}} (or env REPORT_EXPORTER_SECRETS)")
    run.add_argument("--fresh", action="store_true",
                     help="forget the state an earlier run left under --out (its open report) and start over")
    run.add_argument("--timeout", type=float, default=None,
                     help="wall-clock seconds before giving up (default: the export's report deadline + 1 h)")
    run.add_argument("--virtual-time", action="store_true",
                     help="waits take no real time (only for a simulator: a real vendor needs the real waits)")
    _json_option(run, "the run's outcome, metrics and estimated cost")

    backfill = _command(sub, "backfill", "Start one execution per past month on a deployed stage's state machine",
                        "Executions are named <export>-<YYYY-MM>; prints each one's console link as it starts. "
                        "--dry-run prints the execution inputs and starts nothing (no AWS call).", cmd_backfill)
    backfill.add_argument("--config", required=True, help="exports TOML file")
    backfill.add_argument("--export", required=True, help="export name")
    backfill.add_argument("--from", dest="from_period", required=True, type=_period, help="first month, YYYY-MM")
    backfill.add_argument("--to", dest="to_period", required=True, type=_period, help="last month, YYYY-MM")
    _stage_option(backfill)
    backfill.add_argument("--state-machine-arn", help="default: the stage's pipeline stack's output")
    backfill.add_argument("--region", help="AWS region (default: your AWS configuration)")
    backfill.add_argument("--dry-run", action="store_true", help="print the execution inputs, start nothing")
    _json_option(backfill, "the executions started (or their inputs)")

    status = _command(sub, "status", "Show the job ledger: each export and month, its status, metrics and cost",
                      "Reads the deployed stage's ledger table, or with --local the ledger a local demo or run "
                      "saved.", cmd_status)
    status.add_argument("--export", help="only this export")
    _stage_option(status)
    status.add_argument("--table", help="ledger table (default: the stage's storage stack's output)")
    status.add_argument("--region", help="AWS region (default: your AWS configuration)")
    status.add_argument("--local", metavar="DIR",
                        help="read the ledger a local demo or run saved in DIR (its --out) instead of AWS")
    status.add_argument("--limit", type=_positive, default=50, help="at most this many months (default 50)")
    _json_option(status, "every month's run, metrics and estimated cost")

    replay = _command(sub, "replay", "Rebuild a month's Parquet from its kept raw files on a deployed stage",
                      "Invokes the stage's WriteParquet function on the month's raw files, read as their manifests "
                      "say (no config needed, no vendor call).", cmd_replay)
    replay.add_argument("--export", required=True, help="export name (its raw files need not be in any config)")
    replay.add_argument("--period", required=True, type=_period, help="month, YYYY-MM")
    _stage_option(replay)
    replay.add_argument("--raw-bucket", help="raw bucket (default: the stage's storage stack's output)")
    replay.add_argument("--table", help="ledger table (default: the stage's storage stack's output)")
    replay.add_argument("--function-name", help="WriteParquet function (default: the stage's pipeline stack's output)")
    replay.add_argument("--region", help="AWS region (default: your AWS configuration)")

    validate = _command(sub, "validate", "Check an exports TOML file",
                        "Prints each export's vendor, secret, schedule and the day its month counts as late; a "
                        "bad file fails naming the export and the field.", cmd_validate)
    validate.add_argument("--config", required=True, help="exports TOML file")
    _json_option(validate, "the exports")
    return parser


def _fail(code: int, message: str) -> int:
    print(f"report-exporter: {message}", file=sys.stderr, flush=True)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet(args.verbose)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return _fail(INTERRUPTED, "interrupted")
    except BrokenPipeError:
        # The reader went away (`| head`): nothing left to say, and nobody to say it to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
    except MissingExtraError as exc:
        return _fail(MISSING_EXTRA, str(exc))
    except Exception as exc:
        if args.verbose:
            traceback.print_exc()
        return _explain(exc)


def _explain(exc: Exception) -> int:
    """The exit code and one line for ``exc``."""
    from report_exporter.local.operate import StackNotFoundError

    if isinstance(exc, StackNotFoundError):
        return _fail(AWS, str(exc))
    if isinstance(exc, ExporterError):
        return _fail(USAGE, str(exc))
    if importlib.util.find_spec("botocore") is not None:
        from report_exporter.local.operate import aws_problem

        problem = aws_problem(exc)
        if problem is not None:
            return _fail(AWS, problem)
    if isinstance(exc, TimeoutError):
        return _fail(FAILED, f"gave up: {exc}")
    if isinstance(exc, OSError | ValueError):
        return _fail(USAGE, str(exc))
    return _fail(INTERNAL, f"unexpected error: {type(exc).__name__}: {exc} (--verbose shows the traceback)")


if __name__ == "__main__":
    sys.exit(main())
