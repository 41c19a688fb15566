"""Every place the local runner reaches into moto, in one module.

moto's Step Functions interpreter (``execute_state_machine``) runs the synthesized definition; the
runner needs a few of its private seams to make the run behave as AWS does on an injected clock:

* ``LambdaSimpleBackend.invoke``: Lambda tasks call our handlers in process (in a sandbox).
* ``WaitFunction._wait_interval``: Wait states sleep on the runner's clock.
* ``RetrierDecl._eval_body`` and ``retrier_decl.time``: Retry intervals sleep on the runner's clock,
  knowing which execution they belong to.
* ``jitter_strategy_decl.random``: full jitter draws from a seeded generator (repeatable runs).
* ``BaseExecutionWorkerCommunication.terminated``: the moment an execution ends (EventBridge's
  "Execution Status Change" event, and the end of a virtual-time actor).
* ``Environment.set_timed_out`` via the backend's execution: the state machine's own timeout on a
  virtual clock.
* ``Environment.set_error``: a task that fails after StopExecution or the state machine's timeout leaves
  the execution ABORTED or TIMED_OUT, as in AWS (moto would overwrite that with FAILED).
* ``DynamoDBBackend`` item operations: serialized, because DynamoDB evaluates a condition and writes
  atomically and moto does not when executions run in parallel threads.
* S3's ``GetObject``, ``FakeMultipart.complete``, ``FakeKey.value``, the stubber's requests and raw
  responses, and EC2's instance-type offerings: objects stay on disk and are streamed, request bodies are
  freed once answered (:mod:`report_exporter.local.moto_s3`).

Each hook's :class:`Seam` says what it relies on (the internal's place and parameters); :func:`check`
(run before the hooks are installed) fails naming the moto version and the hook when a moto upgrade
moved or changed one (``tests/unit/test_moto_hooks.py`` runs it on the moto uv.lock pins).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any
from unittest import mock

from report_exporter.local import moto_s3


@dataclass(frozen=True)
class Seam:
    """One moto internal a hook patches or reads: where it is and the parameters the hook relies on."""

    hook: str
    module: str
    attribute: str
    parameters: tuple[str, ...] | None = None
    """The callable's parameter names, in order; None: only that it exists (a module, an object)."""
    members: tuple[str, ...] = ()
    """Attributes the hook relies on it having (``sleep`` of the ``time`` module retrier_decl imported)."""

    @property
    def where(self) -> str:
        return f"{self.module}.{self.attribute}"


_DYNAMODB_ITEM_CALLS = ("get_item", "put_item", "update_item", "delete_item", "transact_write_items")
SEAMS: tuple[Seam, ...] = (
    Seam("invoke", "moto.awslambda_simple.models", "LambdaSimpleBackend.invoke",
         ("self", "function_name", "qualifier", "body", "headers", "response_headers")),
    Seam("wait", "moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function",
         "WaitFunction._wait_interval", ("self", "env", "wait_seconds")),
    Seam("retry_sleep", "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl",
         "RetrierDecl._eval_body", ("self", "env")),
    Seam("retry_sleep", "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl", "time",
         members=("sleep",)),
    Seam("jitter", "moto.stepfunctions.parser.asl.component.common.retry.jitter_strategy_decl", "random",
         members=("uniform",)),
    Seam("terminated", "moto.stepfunctions.parser.backend.execution", "BaseExecutionWorkerCommunication.terminated",
         ("self",)),
    Seam("set_error", "moto.stepfunctions.parser.asl.eval.environment", "Environment.set_error", ("self", "error")),
    Seam("set_error", "moto.stepfunctions.parser.asl.eval.program_state", "ProgramStopped"),
    Seam("set_error", "moto.stepfunctions.parser.asl.eval.program_state", "ProgramTimedOut"),
    Seam("time_out", "moto.stepfunctions.parser.asl.eval.environment", "Environment.set_timed_out", ("self",)),
    Seam("time_out", "moto.stepfunctions.parser.asl.eval.environment", "Environment.is_running", ("self",)),
    Seam("time_out", "moto.stepfunctions.parser.models", "stepfunctions_parser_backends"),
    Seam("state_input", "moto.stepfunctions.parser.asl.eval.states", "States.get_input", ("self", "query")),
    Seam("last_error", "moto.stepfunctions.parser.asl.eval.states", "States.get_error_output", ("self", "query")),
    *(Seam("dynamodb_lock", "moto.dynamodb.models", f"DynamoDBBackend.{method}") for method in _DYNAMODB_ITEM_CALLS),
    Seam("s3_get", "moto.s3.responses", "S3Response.get_object", ("self",)),
    Seam("s3_get", "moto.core.botocore_stubber", "MockRawResponse", ("response_input",)),
    Seam("request_cycle", "moto.core.botocore_stubber", "normalize_request", ("request",)),
    Seam("request_cycle", "moto.core.request", "normalize_request", ("request",)),
    Seam("request_cycle", "moto.core.botocore_stubber", "BotocoreStubber.process_request", ("self", "request")),
    Seam("s3_value", "moto.s3.models", "FakeKey.value", members=("fget", "fset")),
    Seam("s3_value", "moto.s3.models", "FakeKey.__init__",
         ("self", "name", "value", "account_id", "region_name", "storage", "etag", "is_versioned", "version_id",
          "max_buffer_size", "multipart", "bucket_name", "encryption", "kms_key_id", "bucket_key_enabled",
          "lock_mode", "lock_legal_status", "lock_until", "checksum_value", "checksum_type", "checksum_parts")),
    Seam("s3_complete", "moto.s3.models", "FakeMultipart.complete", ("self", "body")),
    Seam("s3_complete", "moto.s3.models", "MultipartChecksumBuilder",
         ("checksum_algorithm", "checksum_type"), members=("addPart", "build")),
    Seam("s3_complete", "moto.settings", "S3_UPLOAD_PART_MIN_SIZE"),
    Seam("s3_complete", "moto.s3.utils", "compute_checksum", ("body", "algorithm", "encode_base64")),
    Seam("s3_complete", "moto.core.compat", "HAS_CRT"),
    Seam("ec2_offerings", "moto.utilities.utils", "load_resource", ("resource",)),
)


@dataclass(frozen=True)
class Ended:
    """An execution whose final status moto just set: what the runner reads of it."""

    arn: str
    name: str
    status: str
    input: Any


def moto_version() -> str:
    try:
        return importlib.metadata.version("moto")
    except importlib.metadata.PackageNotFoundError:
        return "(not installed)"


def problem(seam: Seam) -> str | None:
    """What is wrong with ``seam`` in the installed moto, or None if the hook can rely on it."""
    try:
        target: Any = importlib.import_module(seam.module)
    except ImportError:
        return f"module {seam.module} is gone"
    for part in seam.attribute.split("."):
        target = getattr(target, part, None)
        if target is None:
            return f"{seam.where} is gone"
    if seam.parameters is not None:
        found = tuple(inspect.signature(target).parameters)
        if found != seam.parameters:
            return f"{seam.where} takes ({', '.join(found)}), the hook expects ({', '.join(seam.parameters)})"
    missing = [member for member in seam.members if not hasattr(target, member)]
    if missing:
        return f"{seam.where} has no {', '.join(missing)}"
    return None


def check() -> None:
    """Raise naming the moto version, and every hook whose moto internal a moto upgrade moved or changed."""
    problems = [f"hook {seam.hook!r}: {found}" for seam in SEAMS if (found := problem(seam)) is not None]
    if problems:
        raise RuntimeError(
            f"moto {moto_version()} moved what the local runner hooks into (uv.lock pins the moto these hooks "
            "were written for; see report_exporter/local/moto_hooks.py): " + "; ".join(problems)
        )


def execution_arn(env: Any) -> str:
    """The ARN of the execution an interpreter environment belongs to."""
    return str(env.states.context_object.context_object_data["Execution"]["Id"])


def state_name(env: Any) -> str:
    return str(env.states.context_object.context_object_data.get("State", {}).get("Name", ""))


def state_input(env: Any) -> Any:
    return env.states.get_input()


def last_error(env: Any) -> str:
    """The error name a retrier is handling (``Error`` of the state's error output)."""
    try:
        output = env.states.get_error_output()
    except Exception:
        return ""
    return str(output.get("Error", "")) if isinstance(output, dict) else ""


def is_running(env: Any) -> bool:
    return bool(env.is_running())


def time_out(account: str, region: str, arn: str) -> bool:
    """End a running execution with TIMED_OUT, as the state machine's own timeout does; False if it ended."""
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    execution = stepfunctions_parser_backends[account][region].describe_execution(arn)
    worker = getattr(execution, "exec_worker", None)
    env = getattr(worker, "env", None)
    if env is None or not env.is_running():
        return False
    env.set_timed_out()
    return True


@contextmanager
def installed(
    *,
    invoke: Callable[[Any, str, str | None, Any, Any], bytes],
    wait: Callable[[Any, float], None],
    retry_sleep: Callable[[Any, float], None],
    terminated: Callable[[Ended], None],
    jitter: Any | None,
) -> Iterator[None]:
    """Install the runner's hooks for the duration of the block.

    Args:
        invoke: ``(backend, function_name, qualifier, body, response_headers) -> payload bytes``.
        wait: ``(env, seconds)``: a Wait state's interval.
        retry_sleep: ``(env, seconds)``: a Retry interval of the execution ``env`` belongs to.
        terminated: ``(ended)``: called with an :class:`Ended` once an execution's final status is set.
        jitter: a ``random.Random``-like object for full jitter, or None for moto's own.
    """
    moto_s3.load_without_instance_offerings()  # before check(): the Step Functions parser imports them
    check()
    from moto.awslambda_simple.models import LambdaSimpleBackend
    from moto.dynamodb.models import DynamoDBBackend
    from moto.stepfunctions.parser.asl.component.common.retry import jitter_strategy_decl, retrier_decl
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function import WaitFunction
    from moto.stepfunctions.parser.asl.eval.environment import Environment
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramStopped, ProgramTimedOut
    from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication

    local = threading.local()
    original_retry = retrier_decl.RetrierDecl._eval_body
    original_terminated = BaseExecutionWorkerCommunication.terminated
    original_set_error = Environment.set_error

    def invoke_hook(backend: Any, function_name: str, qualifier: str | None, body: Any, headers: Any,
                    response_headers: Any) -> bytes:
        return invoke(backend, function_name, qualifier, body, response_headers)

    def wait_hook(self: Any, env: Any, wait_seconds: int) -> None:
        wait(env, wait_seconds)

    def retry_body(self: Any, env: Any) -> None:
        local.env = env
        try:
            original_retry(self, env)
        finally:
            local.env = None

    class _Time:
        @staticmethod
        def sleep(seconds: float) -> None:
            retry_sleep(getattr(local, "env", None), seconds)

    def terminated_hook(self: Any) -> None:
        original_terminated(self)
        execution = self.execution
        terminated(Ended(arn=str(execution.exec_arn), name=str(execution.name), status=str(execution.status),
                         input=execution.execution_input))

    def set_error_hook(self: Any, error: Any) -> None:
        # In AWS a stopped or timed-out execution stays ABORTED or TIMED_OUT, whatever its running task does.
        if isinstance(self._program_state, (ProgramStopped, ProgramTimedOut)):
            return
        original_set_error(self, error)

    item_lock = threading.RLock()

    def locked(method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with item_lock:
                return method(*args, **kwargs)

        return call

    with ExitStack() as stack:
        stack.enter_context(mock.patch.object(LambdaSimpleBackend, "invoke", invoke_hook))
        stack.enter_context(mock.patch.object(WaitFunction, "_wait_interval", wait_hook))
        stack.enter_context(mock.patch.object(retrier_decl.RetrierDecl, "_eval_body", retry_body))
        stack.enter_context(mock.patch.object(retrier_decl, "time", _Time))
        stack.enter_context(mock.patch.object(BaseExecutionWorkerCommunication, "terminated", terminated_hook))
        stack.enter_context(mock.patch.object(Environment, "set_error", set_error_hook))
        if jitter is not None:
            stack.enter_context(mock.patch.object(jitter_strategy_decl, "random", jitter))
        for method in _DYNAMODB_ITEM_CALLS:
            stack.enter_context(mock.patch.object(DynamoDBBackend, method, locked(getattr(DynamoDBBackend, method))))
        stack.enter_context(moto_s3.installed())
        yield
