"""Runs exports locally through the real, synthesized state machine.

The CDK app is synthesized in-process (no Docker, no bundling); its state machine definition, Lambda
functions, buckets, ledger table and topic are created in moto; moto's ASL interpreter executes the
definition; Lambda tasks call our handlers in this process; Wait and Retry intervals are recorded
and advance a virtual clock instead of sleeping. Vendors are simulators on loopback (or any base URL
the export names). One implementation serves the CLI (``demo``, ``run``) and the end-to-end tests.

Usage::

    with LocalEnvironment(exports) as env:
        result = env.run(export, period="2024-05", simulator=sim)   # or base URL from the export
        env.download(out_dir)                                       # mirror S3 keys into a folder
"""

from __future__ import annotations

import importlib
import json
import os
import threading
import time
import types
import uuid
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from report_exporter import clock
from report_exporter.aws import clients
from report_exporter.local.simulators.base import Simulator
from report_exporter.local.template import ACCOUNT, REGION, Resolver, definition, resources
from report_exporter.models.exports import ExportsFile, ExportSpec

_TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
_ROLE = f"arn:aws:iam::{ACCOUNT}:role/report-exporter-local"


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


@dataclass
class _Recorder:
    waits: dict[str, list[int]] = field(default_factory=dict)
    retries: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Context:
    """The slice of the Lambda context our handlers (and Powertools) read."""

    def __init__(self, name: str, arn: str, memory: int, timeout: int) -> None:
        self.function_name = name
        self.invoked_function_arn = arn
        self.memory_limit_in_mb = memory
        self.aws_request_id = str(uuid.uuid4())
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _locked(method: Any, lock: threading.RLock) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return call


def synthesize(exports: ExportsFile) -> dict[str, dict[str, Any]]:
    """Both stack templates for ``exports`` (no bundling, no Docker)."""
    import tempfile

    from exporter_infra.app_builder import build_app
    from exporter_infra.config import StageConfig

    with tempfile.TemporaryDirectory(prefix="report-exporter-synth-") as outdir:
        built = build_app(StageConfig(exports=exports, stage="local", bundle=False), outdir=outdir)
        # One synth for both stacks (cdk-nag and the validations run once).
        assembly = built.app.synth()
        return {
            stack.stack_name: dict(assembly.get_stack_by_name(stack.stack_name).template)
            for stack in (built.storage, built.pipeline)
        }


class LocalEnvironment:
    """moto + the synthesized stacks, ready to run executions. Use as a context manager."""

    def __init__(self, exports: ExportsFile, *, templates: dict[str, dict[str, Any]] | None = None) -> None:
        self.exports = exports
        self.templates = templates or synthesize(exports)
        self._stack = ExitStack()
        self._recorder = _Recorder()
        self.env: dict[str, str] = {}
        self.state_machine_arn = ""
        self.buckets: dict[str, str] = {}
        self._functions: dict[str, tuple[str, int, int]] = {}
        self._secrets: set[str] = set()
        self._names: set[str] = set()
        self._names_lock = threading.Lock()

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
        from moto import mock_aws
        from moto.awslambda_simple.models import LambdaSimpleBackend
        from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
        from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction

        fake_env = {
            "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_SESSION_TOKEN": "local",
            "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
        }
        self._stack.enter_context(mock.patch.dict(os.environ, fake_env))
        recorder = self._recorder
        runner = self

        def invoke(backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                   response_headers: Any) -> bytes:
            return runner._invoke(backend, function_name, qualifier, body, response_headers)

        def wait_interval(self: Any, env: Any, wait_seconds: int) -> None:
            execution = env.states.context_object.context_object_data["Execution"]["Id"]
            with recorder.lock:
                recorder.waits.setdefault(execution, []).append(int(wait_seconds))
            clock.advance(wait_seconds)

        def retry_sleep(seconds: float) -> None:
            with recorder.lock:
                recorder.retries.append(seconds)
            clock.advance(seconds)

        self._stack.enter_context(mock.patch.object(LambdaSimpleBackend, "invoke", invoke))
        # DynamoDB evaluates a condition and writes in one atomic step; moto does not when executions run
        # in parallel threads. The ledger relies on it, so serialize moto's item operations.
        from moto.dynamodb.models import DynamoDBBackend

        item_lock = threading.RLock()
        for method in ("get_item", "put_item", "update_item", "delete_item", "transact_write_items"):
            self._stack.enter_context(mock.patch.object(DynamoDBBackend, method, _locked(
                getattr(DynamoDBBackend, method), item_lock)))
        self._stack.enter_context(mock.patch.object(WaitFunction, "_wait_interval", wait_interval))
        self._stack.enter_context(
            mock.patch.object(retrier_decl, "time", types.SimpleNamespace(sleep=retry_sleep))
        )
        self._stack.enter_context(
            mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}})
        )
        clients.reset()
        clock.reset()
        clock.use_virtual_time(True)
        self._stack.callback(clock.use_virtual_time, False)
        self._stack.callback(clock.reset)
        self._stack.callback(clients.reset)
        self._create_resources()
        self._stack.enter_context(mock.patch.dict(os.environ, self.env))

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
            lam.create_function(
                FunctionName=physical[logical], Runtime=props.get("Runtime", "python3.12"), Role=_ROLE,
                Handler=props["Handler"], Code={"ZipFile": b"local"}, Environment={"Variables": env},
                Timeout=int(props.get("Timeout", 60)), MemorySize=int(props.get("MemorySize", 256)),
            )
            self._functions[physical[logical]] = (props["Handler"], int(props.get("MemorySize", 256)),
                                                  int(props.get("Timeout", 60)))
            for key, value in env.items():
                if self.env.setdefault(key, value) != value:
                    raise RuntimeError(f"functions disagree on {key}; the local runner shares one environment")
        self.buckets = {
            "raw": self.env["RAW_BUCKET"],
            "curated": self.env["CURATED_BUCKET"],
        }
        sfn = boto3.client("stepfunctions", region_name=REGION)
        (logical, props), = machines
        created = sfn.create_state_machine(
            name=physical[logical].rsplit(":", 1)[-1], definition=json.dumps(definition(props, resolve)),
            roleArn=_ROLE, type="STANDARD",
        )
        self.state_machine_arn = created["stateMachineArn"]

    def _invoke(self, backend: Any, function_name: str, qualifier: str | None, body: Any,
                response_headers: Any) -> bytes:
        fn = backend.get_function(function_name, qualifier)
        handler_path, memory, timeout = self._functions[fn.function_name]
        module_name, func_name = handler_path.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), func_name)
        context = _Context(fn.function_name, fn.function_arn, memory, timeout)
        event = json.loads(body) if body else {}
        try:
            result = handler(event, context)
        except Exception as exc:  # what the Lambda runtime reports for an unhandled error
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc), "stackTrace": []}).encode()
        return json.dumps(result).encode()

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
              simulator: Simulator | None = None) -> tuple[ExportSpec, str]:
        """Start one execution (not waiting for it); returns the export as sent and the execution ARN."""
        import boto3

        if simulator is not None:
            export = self.point_at(export, simulator)
        payload = {"export": export.model_dump(mode="json"), "period": period, "scheduled_time": scheduled_time}
        sfn = boto3.client("stepfunctions", region_name=REGION)
        base = f"{export.name}-{period or 'scheduled'}"
        # StartExecution is idempotent for a running execution with the same name and input (as on AWS),
        # so pick a name no execution has used: <export>-<period>[-<n>].
        with self._names_lock:
            taken = {e["name"] for page in sfn.get_paginator("list_executions").paginate(
                stateMachineArn=self.state_machine_arn) for e in page["executions"]} | self._names
            name = next(n for n in (base, *(f"{base}-{i}" for i in range(2, 10_000))) if n not in taken)
            self._names.add(name)
        arn = sfn.start_execution(stateMachineArn=self.state_machine_arn, name=name,
                                  input=json.dumps(payload))["executionArn"]
        return export, arn

    def point_at(self, export: ExportSpec, simulator: Simulator) -> ExportSpec:
        """The export aimed at ``simulator``, whose credentials are stored in the export's secret."""
        self.put_secret(export.secret_name, simulator.credentials())
        updates: dict[str, Any] = {"base_url": simulator.base_url}
        updates.update(simulator.export_overrides())
        return export.model_copy(update=updates)

    def wait(self, export: str, period: str | None, arn: str, *, timeout: float = 120.0) -> RunResult:
        import boto3

        sfn = boto3.client("stepfunctions", region_name=REGION)
        started = time.monotonic()
        while True:
            described = sfn.describe_execution(executionArn=arn)
            if described["status"] in _TERMINAL:
                break
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"execution {arn} still running after {timeout} s")
            time.sleep(0.01)
        history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        with self._recorder.lock:
            waits = list(self._recorder.waits.get(arn, []))
            retries = list(self._recorder.retries)
        output = json.loads(described["output"]) if described.get("output") else None
        return RunResult(
            export=export, period=period, execution_arn=arn, status=described["status"], output=output,
            error=described.get("error"), cause=described.get("cause"), waits=waits, retries=retries,
            history=[{k: v for k, v in e.items() if k != "timestamp"} for e in history],
            seconds=time.monotonic() - started,
        )

    def run(self, export: ExportSpec, *, period: str | None = None, scheduled_time: str | None = None,
            simulator: Simulator | None = None, timeout: float = 120.0) -> RunResult:
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

    def download(self, out_dir: Path) -> list[Path]:
        """Mirror every raw and curated object into ``out_dir`` (``out_dir/raw/...``, ``out_dir/curated/...``)."""
        written: list[Path] = []
        for role in ("raw", "curated"):
            for key in self.keys(role):
                if key.startswith("curated/_staging/"):
                    continue
                target = out_dir / key
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read(role, key))
                written.append(target)
        return written


@contextmanager
def local_environment(exports: ExportsFile) -> Iterator[LocalEnvironment]:
    with LocalEnvironment(exports) as env:
        yield env
