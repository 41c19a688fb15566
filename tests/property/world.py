"""One example's world for the property test: the deployed functions and resources in moto, a virtual clock,
a fault plan, the vendor in process, and each Lambda invocation run in a Sandbox.

:class:`Deployment` reads the synthesized templates once (the state machine definition, every function's
handler, timeout and memory, their environment, the EventBridge rules). :class:`World` is what one
hypothesis example runs against, wired as ``report_exporter.local.runner.LocalEnvironment`` wires a local
run, minus moto's Step Functions: the test's interpreter (``asl.py``) drives the executions itself.
"""

from __future__ import annotations

import importlib
import io
import json
import os
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal
from unittest import mock

import boto3
import pyarrow.parquet as pq
from boto3.dynamodb.types import TypeDeserializer
from moto import mock_aws

from report_exporter import runtime
from report_exporter.aws import clients
from report_exporter.clock import VirtualClock
from report_exporter.local.faults import Crash, FaultPlan
from report_exporter.local.sandbox import CURRENT, Sandbox, SandboxClock, aws_checkpoint
from report_exporter.local.simulators.base import Simulator
from report_exporter.local.template import ACCOUNT, REGION, Resolver, definition, resources
from report_exporter.local.transport import VendorTransport

START = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)
"""When every example's clock starts: the third of the month, when the schedules fire."""

_DES = TypeDeserializer()


@dataclass(frozen=True)
class Function:
    name: str
    arn: str
    handler: str
    timeout: int
    memory: int


@dataclass(frozen=True)
class Table:
    name: str
    key_schema: list[dict[str, str]]
    attributes: list[dict[str, str]]


@dataclass(frozen=True)
class Rule:
    pattern: dict[str, Any]
    targets: tuple[str, ...]
    """Function ARNs."""


def _pattern_matches(pattern: Any, value: Any) -> bool:
    """EventBridge matching for the subset our rules use: nested objects and lists of allowed values."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_pattern_matches(p, value.get(k)) for k, p in pattern.items())
    if isinstance(pattern, list):
        values = value if isinstance(value, list) else [value]
        return any(v in pattern for v in values)
    return bool(pattern == value)


@dataclass(frozen=True)
class Deployment:
    """What the synthesized stacks deploy, with the physical names this test gives them."""

    definition: dict[str, Any]
    state_machine_arn: str
    functions: dict[str, Function]
    """By ARN (a Task's ``Resource``)."""
    env: dict[str, str]
    buckets: tuple[str, ...]
    tables: tuple[Table, ...]
    topics: tuple[str, ...]
    rules: tuple[Rule, ...]

    @classmethod
    def from_templates(cls, templates: dict[str, dict[str, Any]]) -> Deployment:
        physical: dict[str, str] = {}
        arns: dict[str, str] = {}
        for kind in ("AWS::S3::Bucket", "AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table"):
            for logical, _ in resources(templates, kind):
                physical[logical] = f"prop-{logical.lower()[:40]}"
                arns[logical] = f"arn:aws:{'s3' if 'S3' in kind else 'dynamodb'}:::{physical[logical]}"
        for logical, _ in resources(templates, "AWS::SNS::Topic"):
            physical[logical] = arns[logical] = f"arn:aws:sns:{REGION}:{ACCOUNT}:prop-{logical.lower()[:40]}"
        for logical, _ in resources(templates, "AWS::Lambda::Function"):
            physical[logical] = f"prop-{logical[:50]}"
            arns[logical] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical[logical]}"
        (machine, machine_props), = resources(templates, "AWS::StepFunctions::StateMachine")
        physical[machine] = arns[machine] = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:prop-{machine[:40]}"
        resolve = Resolver(templates, physical, arns)
        functions: dict[str, Function] = {}
        env: dict[str, str] = {}
        for logical, props in resources(templates, "AWS::Lambda::Function"):
            functions[arns[logical]] = Function(name=physical[logical], arn=arns[logical], handler=props["Handler"],
                                                timeout=int(props.get("Timeout", 3)),
                                                memory=int(props.get("MemorySize", 128)))
            variables = resolve((props.get("Environment") or {}).get("Variables") or {})
            for key, value in variables.items():
                if env.setdefault(key, str(value)) != str(value):
                    raise ValueError(f"functions disagree on {key}; the test shares one environment")
        rules = tuple(
            Rule(pattern=resolve(props.get("EventPattern") or {}),
                 targets=tuple(arn for t in props.get("Targets") or [] if (arn := resolve(t["Arn"])) in functions))
            for _, props in resources(templates, "AWS::Events::Rule")
            if props.get("State", "ENABLED") == "ENABLED"
        )
        tables = tuple(
            Table(name=physical[logical], key_schema=props["KeySchema"], attributes=props["AttributeDefinitions"])
            for kind in ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table")
            for logical, props in resources(templates, kind)
        )
        return cls(
            definition=definition(machine_props, resolve),
            state_machine_arn=physical[machine],
            functions=functions,
            env=env,
            buckets=tuple(physical[logical] for logical, _ in resources(templates, "AWS::S3::Bucket")),
            tables=tables,
            topics=tuple(physical[logical] for logical, _ in resources(templates, "AWS::SNS::Topic")),
            rules=rules,
        )

    def targets(self, event: dict[str, Any]) -> list[Function]:
        """The functions the template's EventBridge rules invoke for ``event``."""
        return [self.functions[arn] for rule in self.rules if _pattern_matches(rule.pattern, event)
                for arn in rule.targets]


@dataclass(frozen=True)
class Strike:
    """A fault armed for one invocation: it dies just before its ``nth`` side effect (a vendor call or an
    AWS write), or, when it makes fewer, after its last one (its effects are done, its answer is lost)."""

    kind: Literal["crash", "overrun"]
    nth: int


class Faults(FaultPlan):
    """The local runner's fault plan (its :class:`Crash`) plus overruns: the invocation runs past its timeout
    at the chosen side effect, so the clock moves to its deadline and it dies "Task timed out"."""

    def __init__(self, clock: VirtualClock) -> None:
        super().__init__()
        self._clock = clock
        self.overrun: tuple[str, str, int, int] | None = None
        """(execution name, state, invocation, nth side effect)."""

    def crash(self, *, execution: str, state: str, invocation: int, effect: str, seen: dict[int, int]) -> Crash | None:
        if self.overrun is not None and self.overrun[:3] == (execution, state, invocation):
            seen[-1] = seen.get(-1, 0) + 1
            sandbox = CURRENT.get()
            if seen[-1] == self.overrun[3] and sandbox is not None:
                self.fired.append(f"overrun {execution} {state}#{invocation} before {effect}")
                self._clock.advance(sandbox.remaining())
                raise sandbox.die(sandbox.timed_out_message())
        return super().crash(execution=execution, state=state, invocation=invocation, effect=effect, seen=seen)


@dataclass
class Outcome:
    result: Any
    error: dict[str, Any] | None
    died: bool
    """Crashed or timed out (the sandbox's death), as opposed to returning or raising."""


@dataclass(frozen=True)
class Copy:
    """A CopyObject into the curated bucket, seen as it completed."""

    key: str
    rows: int
    by: Any
    """The ``tag`` of the invocation that made it."""


def plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


class Account:
    """moto for a whole hypothesis run, with the deployment's environment, the handlers' boto3 session (every
    call through its sandbox's checkpoint, as in the local runner) and the test's own clients (no checkpoint).

    Sessions and clients are made once: a fresh botocore session reloads every service model (~0.1 s a
    client). Each example starts from :meth:`reset`: empty moto backends, no cached secrets.
    """

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.copies: list[Copy] = []
        self.current: Any = None
        self._stack = ExitStack()

    def __enter__(self) -> Account:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def _open(self) -> None:
        env = {**self.deployment.env, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION}
        self._stack.enter_context(mock.patch.dict(os.environ, env))
        self.mock = self._stack.enter_context(mock_aws())
        boto3.setup_default_session(region_name=REGION)
        assert boto3.DEFAULT_SESSION is not None
        events = boto3.DEFAULT_SESSION.events
        events.register("before-call", aws_checkpoint)
        events.register("provide-client-params.s3.CopyObject", self._copy_params)
        events.register("after-call.s3.CopyObject", self._copied)
        self._stack.callback(setattr, boto3, "DEFAULT_SESSION", None)
        clients.reset()
        self._stack.callback(clients.reset)
        inspect = boto3.session.Session(region_name=REGION)
        self.s3, self.dynamodb = inspect.client("s3"), inspect.client("dynamodb")
        self.secrets, self.sns = inspect.client("secretsmanager"), inspect.client("sns")

    def reset(self) -> None:
        """Empty AWS with the deployment's buckets, tables and topics."""
        from aws_lambda_powertools.utilities import parameters

        self.mock.reset()
        parameters.clear_caches()  # type: ignore[no-untyped-call]
        self.copies = []
        self.current = None
        for bucket in self.deployment.buckets:
            self.s3.create_bucket(Bucket=bucket)
        for table in self.deployment.tables:
            self.dynamodb.create_table(TableName=table.name, KeySchema=table.key_schema,
                                       AttributeDefinitions=table.attributes, BillingMode="PAY_PER_REQUEST")
        for topic in self.deployment.topics:
            self.sns.create_topic(Name=topic.rsplit(":", 1)[-1])

    # Watching S3.
    @staticmethod
    def _copy_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["property_test_copy"] = (params.get("Bucket"), params.get("Key"))

    def _copied(self, context: dict[str, Any], **_: Any) -> None:
        bucket, key = context.get("property_test_copy") or (None, None)
        if bucket and key:
            self.copies.append(Copy(key=key, rows=self.parquet_rows(bucket, key) or 0, by=self.current))

    # Reading, without checkpoints.
    def item(self, table: str, pk: str, sk: str) -> dict[str, Any] | None:
        got = self.dynamodb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}},
                                     ConsistentRead=True).get("Item")
        return {k: plain(_DES.deserialize(v)) for k, v in got.items()} if got else None

    def read(self, bucket: str, key: str) -> bytes | None:
        try:
            body: bytes = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
        return body

    def parquet_rows(self, bucket: str, key: str) -> int | None:
        body = self.read(bucket, key)
        return None if body is None else int(pq.read_metadata(io.BytesIO(body)).num_rows)


@dataclass
class World:
    """One example: fresh AWS resources, the clock, the faults and the vendor, wired as the local runner does."""

    account: Account
    simulator: Simulator
    clock: VirtualClock = field(init=False)
    faults: Faults = field(init=False)
    _stack: ExitStack = field(default_factory=ExitStack)
    _handlers: dict[str, Callable[[Any, Any], Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise

    def _open(self) -> None:
        self.account.reset()
        self.clock = VirtualClock(START)
        self.faults = Faults(self.clock)
        handler_clock = SandboxClock(self.clock)
        transport = VendorTransport(handler_clock, self.faults)
        self._stack.callback(transport.close)
        self.simulator.clock = handler_clock
        transport.route(self.simulator.base_url, self.simulator.transport())
        self._stack.enter_context(runtime.override(clock=handler_clock, transport=transport))

    @property
    def copies(self) -> list[Copy]:
        return self.account.copies

    def item(self, table: str, pk: str, sk: str) -> dict[str, Any] | None:
        return self.account.item(table, pk, sk)

    def read(self, bucket: str, key: str) -> bytes | None:
        return self.account.read(bucket, key)

    def parquet_rows(self, bucket: str, key: str) -> int | None:
        return self.account.parquet_rows(bucket, key)

    def close(self) -> None:
        self._stack.close()

    def put_secret(self, name: str, value: dict[str, str]) -> None:
        self.account.secrets.create_secret(Name=name, SecretString=json.dumps(value))

    # Invoking.
    def handler(self, function: Function) -> Callable[[Any, Any], Any]:
        if function.handler not in self._handlers:
            module, name = function.handler.rsplit(".", 1)
            self._handlers[function.handler] = getattr(importlib.import_module(module), name)
        return self._handlers[function.handler]

    def invoke(self, function: Function, *, state: str, execution: str, invocation: int, payload: Any,
               strike: Strike | None = None, tag: Any = None) -> Outcome:
        """Run the function's real handler in a sandbox, as Lambda would, with ``strike`` armed.

        ``tag`` labels the S3 copies the invocation makes (:attr:`copies`).
        """
        name = execution.rsplit(":", 1)[-1]
        self.faults.faults.clear()
        self.faults.overrun = None
        if strike is not None and strike.kind == "crash":
            self.faults.add(Crash(state=state, nth=strike.nth, invocation=invocation, execution=name))
        elif strike is not None:
            self.faults.overrun = (name, state, invocation, strike.nth)
        fired = len(self.faults.fired)
        sandbox = Sandbox(function=function.name, state=state, execution=execution, invocation=invocation,
                          timeout=function.timeout, memory=function.memory, clock=self.clock, faults=self.faults)
        self.account.current = tag
        try:
            result, error = sandbox.run(self.handler(function), payload)
        finally:
            self.account.current = None
            self.faults.faults.clear()
            self.faults.overrun = None
        if strike is not None and len(self.faults.fired) == fired:
            # Fewer side effects than ``nth``: it dies after its last one, before its answer reaches Step Functions.
            if strike.kind == "overrun":
                self.clock.advance(sandbox.remaining())
                message = sandbox.timed_out_message()
            else:
                message = (f"RequestId: {sandbox.request_id} Error: Runtime exited with error: signal: killed "
                           "(injected crash after the last side effect)")
            self.faults.fired.append(f"{strike.kind} {name} {state}#{invocation} after the last side effect")
            sandbox.die(message)
            result, error = None, {"errorType": "Lambda.Unknown", "errorMessage": message}
        if error is None:
            result = json.loads(json.dumps(result))
        return Outcome(result=result, error=error, died=sandbox.death is not None)
