"""Runs exports locally through the real, synthesized state machine, the way AWS runs them.

The CDK app's templates (:mod:`report_exporter.local.template`: synthesized once, then read from a
cache) give the state machine definition, Lambda functions, buckets, ledger table, topic and EventBridge
rules, which are created in moto; moto's ASL interpreter executes the definition (through the hooks of
:mod:`report_exporter.local.moto_hooks`). What AWS does, the runner does too:

* **Time.** One injected clock (:mod:`report_exporter.clock`). On the system clock (``report-exporter
  run`` against a vendor) Wait states, Retry intervals and ``Retry-After`` really elapse. On a virtual
  clock (the demo, the tests, ``run --virtual-time``) they take no real time, and every execution is an
  actor of the clock: time moves only when all of them wait, so results do not depend on the machine's
  speed or load.
* **Lambda.** Each task calls our handler in a sandbox (:mod:`report_exporter.local.sandbox`) with the
  timeout and memory the template gives its function and a context whose remaining time is true; an
  overrun ends as ``Lambda.Unknown`` "Task timed out", like AWS.
* **Faults** from one :class:`~report_exporter.local.faults.FaultPlan`: crashes before any side
  effect, vendor hangs and odd answers, StopExecution, the state machine's own timeout.
* **Endings.** The template's EventBridge rules on "Step Functions Execution Status Change" are
  evaluated when an execution ends, and their Lambda targets invoked (EndRun).

Vendors are simulators answered in process (or any base URL the export names). One implementation
serves the CLI (``demo``, ``run``) and every end-to-end test.

Usage::

    with LocalEnvironment(exports) as env:
        result = env.run(export, period="2024-05", simulator=sim)   # or base URL from the export
        env.download(out_dir)                                       # mirror S3 keys into a folder

Each function runs with its own environment variables (as the template gives them), never a shared one.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from report_exporter import runtime
from report_exporter.aws import clients
from report_exporter.clock import SYSTEM, Clock, VirtualClock
from report_exporter.local import moto_hooks
from report_exporter.local.faults import FaultPlan
from report_exporter.local.persist import LocalState
from report_exporter.local.sandbox import CURRENT, Sandbox, SandboxClock, aws_checkpoint
from report_exporter.local.simulators.base import Simulator
from report_exporter.local.template import ACCOUNT, REGION, Resolver, definition, resources, synthesize
from report_exporter.local.transport import VendorTransport
from report_exporter.models.exports import ExportsFile, ExportSpec

_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
_ROLE = f"arn:aws:iam::{ACCOUNT}:role/report-exporter-local"
Progress = Callable[[str], None]


@dataclass
class RunResult:
    """What one execution did, as the user would want to see it."""

    export: str
    period: str | None
    execution_arn: str
    status: str
    output: dict[str, Any] | None
    error: str | None
    cause: str | None
    waits: list[int]
    retries: list[float]
    history: list[dict[str, Any]]
    seconds: float
    """Real seconds the run took."""
    elapsed: timedelta = timedelta(0)
    """Time that passed on the runner's clock (virtual or real)."""
    ended: list[dict[str, Any]] = field(default_factory=list)
    """What the EventBridge rules' targets (EndRun) returned for this execution's end."""
    metrics: list[dict[str, Any]] = field(default_factory=list)
    """The EMF documents the execution's handlers emitted (what CloudWatch would turn into metrics), in order,
    each with the emitting state under ``state``."""

    def metric_values(self, name: str) -> list[float]:
        """Every value of metric ``name`` this execution emitted, in order."""
        from report_exporter.telemetry import values

        return [found[name] for blob in self.metrics if name in (found := values(blob))]

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCEEDED"

    def states_entered(self) -> list[str]:
        return [e["stateEnteredEventDetails"]["name"] for e in self.history if "stateEnteredEventDetails" in e]

    def task_outputs(self, state: str) -> list[dict[str, Any]]:
        """Outputs of each successful Lambda call made by ``state``, in order."""
        outputs: list[dict[str, Any]] = []
        current = None
        for event in self.history:
            if "stateEnteredEventDetails" in event:
                current = event["stateEnteredEventDetails"]["name"]
            if event["type"] == "LambdaFunctionSucceeded" and current == state:
                outputs.append(json.loads(event["lambdaFunctionSucceededEventDetails"]["output"]))
        return outputs

    def task_errors(self, state: str) -> list[tuple[str, str]]:
        """(error, cause) of each failed Lambda call made by ``state``, in order."""
        errors: list[tuple[str, str]] = []
        current = None
        for event in self.history:
            if "stateEnteredEventDetails" in event:
                current = event["stateEnteredEventDetails"]["name"]
            if event["type"] == "LambdaFunctionFailed" and current == state:
                details = event["lambdaFunctionFailedEventDetails"]
                errors.append((details.get("error", ""), details.get("cause", "")))
        return errors


@dataclass
class _Function:
    name: str
    handler: str
    state: str
    memory: int
    timeout: int
    environment: dict[str, str]


@dataclass
class _Rule:
    pattern: dict[str, Any]
    targets: list[str]  # function names


@dataclass
class _Execution:
    arn: str
    name: str
    started: datetime
    done: threading.Event = field(default_factory=threading.Event)
    waits: list[int] = field(default_factory=list)
    retries: list[float] = field(default_factory=list)
    invocations: dict[str, int] = field(default_factory=dict)
    ended: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    stopped_at: datetime | None = None


def _state_of(handler: str) -> str:
    """``report_exporter.handlers.write_parquet.lambda_handler`` -> ``WriteParquet``."""
    module = handler.rsplit(".", 2)[-2]
    return "".join(part.title() for part in module.split("_"))


def _execution_of(event: Any) -> str:
    """The execution an invocation belongs to: every payload of ours carries it."""
    if not isinstance(event, dict):
        return ""
    plan = event.get("plan") or (event.get("state") or {}).get("plan") or {}
    detail = event.get("detail") or {}
    return str(event.get("execution_id") or plan.get("execution_id") or detail.get("executionArn") or "")


def _matches(pattern: Any, value: Any) -> bool:
    """EventBridge pattern matching for the subset our rules use: nested objects and lists of allowed values."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_matches(p, value.get(k)) for k, p in pattern.items())
    if isinstance(pattern, list):
        values = value if isinstance(value, list) else [value]
        return any(v in pattern for v in values)
    return bool(pattern == value)


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"


class LocalEnvironment:
    """moto + the synthesized stacks, ready to run executions. Use as a context manager.

    Args:
        exports: The exports the stacks are synthesized for.
        templates: Already synthesized templates (tests synthesize once per session).
        clock: The clock the whole run uses; default: a virtual clock starting now.
        faults: Faults to inject.
        progress: Called with one line per wait, retry and end (the CLI prints them).
        seed: Seed of full jitter on a virtual clock (repeatable runs).
        state: Where the ledger and objects are kept across processes (``local/persist.py``); a run started
            for an export and month whose report an earlier, killed process left open resumes that
            process's execution. None: everything lives and dies with this process.
    """

    def __init__(self, exports: ExportsFile, *, templates: dict[str, dict[str, Any]] | None = None,
                 clock: Clock | None = None, faults: FaultPlan | None = None, progress: Progress | None = None,
                 seed: int = 0, state: LocalState | None = None) -> None:
        self.exports = exports
        self.state = state
        self.templates = templates or synthesize(exports)
        self.clock: Clock = clock or VirtualClock(SYSTEM.now())
        self.virtual = isinstance(self.clock, VirtualClock)
        self.faults = faults or FaultPlan()
        self.progress = progress
        self._seed = seed
        self._handler_clock = SandboxClock(self.clock)
        self._transport = VendorTransport(self._handler_clock, self.faults)
        self._stack = ExitStack()
        self.env: dict[str, str] = {}
        self.state_machine_arn = ""
        self.state_machine_timeout: timedelta | None = None
        self.definition: dict[str, Any] = {}
        self.buckets: dict[str, str] = {}
        self._functions: dict[str, _Function] = {}
        self._rules: list[_Rule] = []
        self._executions: dict[str, _Execution] = {}
        self._secrets: set[str] = set()
        self._names: set[str] = set()
        self._lock = threading.Lock()

    # Setting up.
    def __enter__(self) -> LocalEnvironment:
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _start(self) -> None:
        import boto3
        from moto import mock_aws

        _return_large_blocks()

        fake_env = {
            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        }
        self._stack.enter_context(mock.patch.dict(os.environ, fake_env))
        self._stack.enter_context(moto_hooks.installed(
            invoke=self._invoke, wait=self._wait, retry_sleep=self._retry_sleep, terminated=self._terminated,
            jitter=random.Random(self._seed) if self.virtual else None,
        ))
        self._stack.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        )
        # Every AWS call of a handler passes its sandbox's checkpoint (deadline, injected crashes).
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        boto3.DEFAULT_SESSION.events.register("before-call", aws_checkpoint)
        self._stack.callback(setattr, boto3, "DEFAULT_SESSION", None)
        clients.reset()
        self._stack.callback(clients.reset)
        self._stack.enter_context(runtime.override(clock=self._handler_clock, transport=self._transport,
                                                   metrics=self._record_metrics))
        self._stack.callback(self._transport.close)
        self._create_resources()
        if self.state is not None:
            self._names |= self.state.restore(table=self.env["LEDGER_TABLE"], buckets=self.buckets)
            self.state.attach(boto3.DEFAULT_SESSION.events)

    def _create_resources(self) -> None:
        import boto3

        physical: dict[str, str] = {}
        arns: dict[str, str] = {}
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {
            "Service": ["lambda.amazonaws.com", "states.amazonaws.com"]}}]}
        boto3.client("iam", region_name=REGION).create_role(
            RoleName=_ROLE.rsplit("/", 1)[-1], AssumeRolePolicyDocument=json.dumps(trust))
        s3 = boto3.client("s3", region_name=REGION)
        for logical, _ in resources(self.templates, "AWS::S3::Bucket"):
            name = f"local-{logical.lower()[:40]}"
            s3.create_bucket(Bucket=name)
            physical[logical] = name
            arns[logical] = f"arn:aws:s3:::{name}"
        dynamo = boto3.client("dynamodb", region_name=REGION)
        for kind in ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table"):
            for logical, props in resources(self.templates, kind):
                name = f"local-{logical.lower()[:40]}"
                dynamo.create_table(TableName=name, KeySchema=props["KeySchema"],
                                    AttributeDefinitions=props["AttributeDefinitions"], BillingMode="PAY_PER_REQUEST")
                physical[logical] = name
                arns[logical] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
        sns = boto3.client("sns", region_name=REGION)
        for logical, _ in resources(self.templates, "AWS::SNS::Topic"):
            arn = sns.create_topic(Name=f"local-{logical.lower()[:40]}")["TopicArn"]
            physical[logical] = arn
            arns[logical] = arn
        functions = resources(self.templates, "AWS::Lambda::Function")
        for logical, _props in functions:
            name = f"local-{logical[:50]}"
            physical[logical] = name
            arns[logical] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        machines = resources(self.templates, "AWS::StepFunctions::StateMachine")
        for logical, _ in machines:
            physical[logical] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:local-{logical[:40]}"
            arns[logical] = physical[logical]
        resolve = Resolver(self.templates, physical, arns)
        lam = boto3.client("lambda", region_name=REGION)
        for logical, props in functions:
            env = {k: str(v) for k, v in resolve((props.get("Environment") or {}).get("Variables") or {}).items()}
            function = _Function(name=physical[logical], handler=props["Handler"], state=_state_of(props["Handler"]),
                                 memory=int(props.get("MemorySize", 128)), timeout=int(props.get("Timeout", 3)),
                                 environment=env)
            lam.create_function(
                FunctionName=function.name, Runtime=props.get("Runtime", "python3.12"), Role=_ROLE,
                Handler=function.handler, Code={"ZipFile": b"local"}, Environment={"Variables": env},
                Timeout=function.timeout, MemorySize=function.memory,
            )
            self._functions[function.name] = function
            for key, value in env.items():
                # Each function runs with its own variables; this union is only the tests' view of names.
                self.env.setdefault(key, value)
        self.buckets = {"raw": self.env["RAW_BUCKET"], "curated": self.env["CURATED_BUCKET"]}
        function_arns = {arns[logical]: physical[logical] for logical, _ in functions}
        for _logical, props in resources(self.templates, "AWS::Events::Rule"):
            targets = [function_arns[arn] for t in props.get("Targets") or []
                       if (arn := resolve(t.get("Arn"))) in function_arns]
            # Rules on events only: a scheduled rule (WatchRuns, hourly) is no execution's business here.
            if targets and props.get("EventPattern") and props.get("State", "ENABLED") == "ENABLED":
                self._rules.append(_Rule(pattern=resolve(props.get("EventPattern") or {}), targets=targets))
        sfn = boto3.client("stepfunctions", region_name=REGION)
        (logical, props), = machines
        asl = definition(props, resolve)
        self.definition = asl
        if "TimeoutSeconds" in asl:
            self.state_machine_timeout = timedelta(seconds=int(asl["TimeoutSeconds"]))
        created = sfn.create_state_machine(
            name=physical[logical].rsplit(":", 1)[-1], definition=json.dumps(asl), roleArn=_ROLE, type="STANDARD",
        )
        self.state_machine_arn = created["stateMachineArn"]

    # The Lambda service.
    def _invoke(self, backend: Any, function_name: str, qualifier: str | None, body: Any,
                response_headers: Any) -> bytes:
        fn = backend.get_function(function_name, qualifier)
        event = json.loads(body) if body else {}
        result, error = self.call_function(fn.function_name, event)
        if error is not None:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({**error, "stackTrace": []}).encode()
        return json.dumps(result).encode()

    def call_function(self, name: str, event: Any) -> tuple[Any, dict[str, str] | None]:
        """Invoke one of the stack's functions in a sandbox; (result, None) or (None, Lambda error payload)."""
        function = self._functions[name]
        arn = _execution_of(event)
        execution = self._executions.get(arn)
        invocation = 1
        if execution is not None:
            with self._lock:
                invocation = execution.invocations[function.state] = execution.invocations.get(function.state, 0) + 1
        sandbox = Sandbox(function=name, state=function.state, execution=arn, invocation=invocation,
                          timeout=function.timeout, memory=function.memory, clock=self.clock, faults=self.faults,
                          environment=function.environment)
        module_name, func_name = function.handler.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), func_name)
        result, error = sandbox.run(handler, event)
        if error is not None and execution is not None:
            self._say(execution, f"{function.state} failed: {error['errorType']}")
        if execution is not None and self.faults.stop_after(execution=execution.name, state=function.state,
                                                            invocation=invocation):
            self.stop(execution.arn)
        return result, error

    def _record_metrics(self, blob: dict[str, Any]) -> None:
        """The handlers' EMF output (stdout in Lambda): kept per execution, as CloudWatch would receive it."""
        sandbox = CURRENT.get()
        execution = self._executions.get(sandbox.execution) if sandbox is not None else None
        if execution is not None and sandbox is not None:
            with self._lock:
                execution.metrics.append({**blob, "state": sandbox.state})

    # Waiting, on the runner's clock.
    def _wait(self, env: Any, seconds: float) -> None:
        arn = moto_hooks.execution_arn(env)
        execution = self._executions.get(arn)
        if execution is not None:
            execution.waits.append(int(seconds))
            self._say(execution, self._wait_line(moto_hooks.state_input(env), seconds))
        self._sleep(seconds, lambda: not moto_hooks.is_running(env))

    def _wait_line(self, state: Any, seconds: float) -> str:
        job = state.get("job") if isinstance(state, dict) else None
        plan = state.get("plan") if isinstance(state, dict) else None
        line = f"waiting {_duration(seconds)}"
        if isinstance(job, dict):
            line += f" before poll {int(job.get('polls', 0)) + 1} of report {job.get('report_id')}"
        if isinstance(plan, dict) and plan.get("deadline"):
            left = (datetime.fromisoformat(str(plan["deadline"])) - self.clock.now()).total_seconds()
            line += f" (deadline in {_duration(left)})"
        return line

    def _retry_sleep(self, env: Any, seconds: float) -> None:
        execution = self._executions.get(moto_hooks.execution_arn(env)) if env is not None else None
        if execution is not None:
            execution.retries.append(seconds)
            self._say(execution, f"{moto_hooks.state_name(env)}: {moto_hooks.last_error(env) or 'error'}, "
                                 f"retrying in {_duration(seconds)}")
        self._sleep(seconds, lambda: env is not None and not moto_hooks.is_running(env))

    def _sleep(self, seconds: float, cancelled: Callable[[], bool]) -> None:
        """Sleep on the runner's clock; a stopped or timed-out execution stops waiting."""
        if isinstance(self.clock, VirtualClock):
            self.clock.sleep(seconds, cancelled=cancelled)
            return
        # Real time: in steps of at most a second, so that StopExecution ends a long wait promptly.
        end = self.clock.now() + timedelta(seconds=seconds)
        while not cancelled() and (left := (end - self.clock.now()).total_seconds()) > 0:
            self.clock.sleep(min(left, 1.0))

    def _say(self, execution: _Execution, line: str) -> None:
        if self.progress is not None:
            self.progress(f"{self.clock.now():%H:%M:%S} {execution.name}: {line}")

    # Endings.
    def _terminated(self, ended: moto_hooks.Ended) -> None:
        arn = ended.arn
        execution = self._executions.get(arn)
        try:
            self._status_changed(ended, execution)
        finally:
            if execution is not None:
                execution.done.set()
            if isinstance(self.clock, VirtualClock):
                self.clock.leave(arn)

    def _status_changed(self, ended: moto_hooks.Ended, execution: _Execution | None) -> None:
        """EventBridge: the execution's "Status Change" event to every rule target it matches."""
        status = ended.status
        now = self.clock.now()
        started = execution.started if execution else now
        event = {
            "version": "0", "id": str(uuid.uuid4()), "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states", "account": ACCOUNT, "time": now.isoformat(), "region": REGION,
            "resources": [ended.arn],
            "detail": {
                "executionArn": ended.arn, "stateMachineArn": self.state_machine_arn,
                "name": ended.name, "status": status, "startDate": _millis(started),
                "stopDate": _millis(now), "input": ended.input,
                "inputDetails": {"included": True},
            },
        }
        if execution is not None:
            self._say(execution, f"ended {status}")
        for rule in self._rules:
            if not _matches(rule.pattern, event):
                continue
            for target in rule.targets:
                result, error = self.call_function(target, event)
                if execution is not None:
                    execution.ended.append(result if error is None else {"error": error})

    # Running.
    def put_secret(self, name: str, value: dict[str, str]) -> None:
        import boto3

        client = boto3.client("secretsmanager", region_name=REGION)
        if name in self._secrets:
            client.put_secret_value(SecretId=name, SecretString=json.dumps(value))
        else:
            client.create_secret(Name=name, SecretString=json.dumps(value))
            self._secrets.add(name)
        clients.reset()

    def start(self, export: ExportSpec, *, period: str | None = None, scheduled_time: str | None = None,
              simulator: Simulator | None = None, name: str | None = None) -> tuple[ExportSpec, str]:
        """Start one execution (not waiting for it); returns the export as sent and the execution ARN."""
        import boto3

        if simulator is not None:
            export = self.point_at(export, simulator)
        payload = {"export": export.model_dump(mode="json"), "period": period, "scheduled_time": scheduled_time}
        sfn = boto3.client("stepfunctions", region_name=REGION)
        base = name or f"{export.name}-{period or 'scheduled'}"
        # StartExecution is idempotent for a running execution with the same name and input (as on AWS),
        # so pick a name no execution has used: <export>-<period>[-<n>]; or, for a month an earlier process
        # left open, that process's execution, which goes on from what the ledger kept.
        left = self.left_open(export.name, period) if name is None else None
        resumed = left[0] if left is not None else None
        with self._lock:
            started_here = {e["name"] for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.state_machine_arn) for e in page["executions"]}
            started_here |= {e.name for e in self._executions.values()}
            taken = started_here | self._names  # (with the names an earlier process's ledger mentions)
            chosen = resumed if resumed is not None and resumed not in started_here else next(
                n for n in (base, *(f"{base}-{i}" for i in range(2, 10_000))) if n not in taken)
            self._names.add(chosen)
            arn = f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{chosen}"
            execution = self._executions[arn] = _Execution(arn=arn, name=chosen, started=self.clock.now())
        if isinstance(self.clock, VirtualClock):
            self.clock.join(arn)
            limits = [t for t in (self.state_machine_timeout, self.faults.time_out(chosen)) if t is not None]
            if limits:
                self.clock.call_at(execution.started + min(limits), lambda: self._time_out(arn))
        elif (after := self.faults.time_out(chosen)) is not None:
            timer = threading.Timer(after.total_seconds(), self._time_out, args=(arn,))
            timer.daemon = True
            timer.start()
            self._stack.callback(timer.cancel)
        try:
            started = sfn.start_execution(stateMachineArn=self.state_machine_arn, name=chosen,
                                          input=json.dumps(payload))["executionArn"]
        except BaseException:
            if isinstance(self.clock, VirtualClock):
                self.clock.leave(arn)
            raise
        assert started == arn, (started, arn)
        return export, arn

    def left_open(self, export: str, period: str | None) -> tuple[str, dict[str, Any]] | None:
        """The execution name of an earlier process that holds ``export``'s open report for ``period``, and
        the ledger item, if any (only with ``state``): starting that export and month resumes it."""
        if self.state is None or period is None:
            return None
        from report_exporter.aws.ledger import ADOPTABLE
        from report_exporter.ports import RunStatus

        item = self.ledger_item(export, period)
        owner = str(item.get("lease_owner") or "")
        prefix = self.state_machine_arn.replace(":stateMachine:", ":execution:") + ":"
        open_ = item.get("status") in ADOPTABLE | {RunStatus.REQUESTING}
        ended = item.get("ended") or ()
        if not open_ or not owner.startswith(prefix) or owner in ended or owner in self._executions:
            return None
        return owner[len(prefix):], item

    def _time_out(self, arn: str) -> None:
        if moto_hooks.time_out(ACCOUNT, REGION, arn) and isinstance(self.clock, VirtualClock):
            self.clock.poke()

    def stop(self, arn: str) -> None:
        """StopExecution, as an operator would."""
        import boto3

        boto3.client("stepfunctions", region_name=REGION).stop_execution(executionArn=arn)
        if isinstance(self.clock, VirtualClock):
            self.clock.poke()

    def point_at(self, export: ExportSpec, simulator: Simulator) -> ExportSpec:
        """The export aimed at ``simulator`` (answered in process, on this run's clock), with its credentials."""
        simulator.clock = self.clock
        self._transport.route(simulator.base_url, simulator.transport())
        self.put_secret(export.secret_name, simulator.credentials())
        updates: dict[str, Any] = {"base_url": simulator.base_url}
        updates.update(simulator.export_overrides())
        return export.model_copy(update=updates)

    def wait(self, export: str, period: str | None, arn: str, *, timeout: float | None = 120.0) -> RunResult:
        """Wait for the execution (and what its end triggered) to finish; ``timeout`` is real seconds."""
        import boto3

        sfn = boto3.client("stepfunctions", region_name=REGION)
        execution = self._executions[arn]
        started = time.monotonic()
        if not execution.done.wait(timeout):
            raise TimeoutError(f"execution {execution.name} still running after {timeout} s")
        described = sfn.describe_execution(executionArn=arn)
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        output = json.loads(described["output"]) if described.get("output") else None
        return RunResult(
            export=export, period=period, execution_arn=arn, status=described["status"], output=output,
            error=described.get("error"), cause=described.get("cause"), waits=list(execution.waits),
            retries=list(execution.retries),
            history=[{k: v for k, v in e.items() if k != "timestamp"} for e in history],
            seconds=time.monotonic() - started, elapsed=self.clock.now() - execution.started,
            ended=list(execution.ended), metrics=list(execution.metrics),
        )

    def run(self, export: ExportSpec, *, period: str | None = None, scheduled_time: str | None = None,
            simulator: Simulator | None = None, timeout: float | None = 120.0) -> RunResult:
        """Run one export for one period to the end."""
        sent, arn = self.start(export, period=period, scheduled_time=scheduled_time, simulator=simulator)
        return self.wait(sent.name, period, arn, timeout=timeout)

    def run_many(self, runs: Sequence[tuple[ExportSpec, str]], *, simulator: Simulator | None = None,
                 timeout: float = 120.0) -> list[RunResult]:
        """Start several executions at once, then wait for all of them."""
        started = [(self.start(export, period=period, simulator=simulator), period) for export, period in runs]
        return [self.wait(sent.name, period, arn, timeout=timeout) for (sent, arn), period in started]

    # Looking at the results.
    def keys(self, role: str, prefix: str = "") -> list[str]:
        import boto3

        s3 = boto3.client("s3", region_name=REGION)
        keys: list[str] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.buckets[role], Prefix=prefix):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def read(self, role: str, key: str) -> bytes:
        import boto3

        s3 = boto3.client("s3", region_name=REGION)
        body: bytes = s3.get_object(Bucket=self.buckets[role], Key=key)["Body"].read()
        return body

    def ledger_item(self, export: str, period: str) -> dict[str, Any]:
        from report_exporter.aws.ledger import DynamoLedger

        return DynamoLedger(self.env["LEDGER_TABLE"]).get(export, period) or {}

    def ledger_items(self) -> list[dict[str, Any]]:
        """Every run item of the ledger (export and month), as ``report-exporter status`` reads them."""
        from report_exporter.local.operate import ledger_rows

        return ledger_rows(self.env["LEDGER_TABLE"], region=REGION)

    def save_ledger(self, path: Path) -> Path:
        """Write the ledger's run items to ``path`` (JSON), for ``report-exporter status --local``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"ledger": self.ledger_items()}, indent=1, default=str) + "\n", encoding="utf-8")
        return path

    def download(self, out_dir: Path, *, skip: set[str] | frozenset[str] = frozenset()) -> list[Path]:
        """Mirror every raw and curated object into ``out_dir`` (``out_dir/raw/...``, ``out_dir/curated/...``),
        except the keys in ``skip`` (mirrored already)."""
        written: list[Path] = []
        for role in ("raw", "curated"):
            for key in self.keys(role):
                if key.startswith("curated/_staging/") or key in skip:
                    continue
                target = out_dir / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read(role, key))
                written.append(target)
        return written


def _return_large_blocks() -> None:
    """Hand every freed block of 128 KiB or more straight back to the OS (glibc's fixed mmap threshold).

    Lambda gives each function a process of its own; the runner hosts all six and moto's S3 in one. glibc
    raises its mmap threshold after each large free (up to 32 MiB), after which moto's 8 MiB request bodies
    and object copies come from the heap and stay resident when freed: a 1M-row Particle run peaked at 820
    MiB, 645-660 with the threshold fixed (bench/README.md, "`run` peak"). Without glibc (macOS, musl) a no-op.
    Arrow then allocates from glibc too, so its freed buffers go back the same way.
    """
    import ctypes

    import pyarrow as pa

    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)  # the process's own symbols: no library search
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, 128 << 10)
        # Arrow's buffers too: its own allocator (mimalloc) keeps what WriteParquet freed for the process's
        # life, 110 MiB after a 1M-row report; on glibc's, a freed buffer goes back at once (379 against 431
        # MiB at the peak of that run). A Lambda function has one process per invocation: nothing to keep there.
        pa.set_memory_pool(pa.system_memory_pool())


_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
