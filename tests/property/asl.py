"""A small, deterministic interpreter of the Amazon States Language subset our state machine uses.

It runs the *deployed* definition: the ``DefinitionString`` of the synthesized template (its ``Fn::Join``
resolved to Lambda ARNs), not a copy of it, so a change to retries, catches or the chain is what the
property test exercises. Nothing runs on its own: :meth:`Interpreter.step` moves one execution by exactly
one state, at a time the caller gives, and calls back for each Lambda invocation. The caller therefore
decides the interleaving of several executions and how time passes (no threads, no wall clock).

Supported, as Step Functions documents it:

* ``Task`` whose ``Resource`` is a Lambda ARN: ``Parameters`` (``.$`` keys: ``$``-paths into the state's
  input and ``$$.Execution.Id`` / ``Name`` / ``StartTime``, ``$$.State.Name``), ``ResultPath`` (``$``, a
  ``$.a.b`` path or ``null``), ``Retry`` (``ErrorEquals``, ``IntervalSeconds``, ``MaxAttempts``,
  ``BackoffRate``, ``MaxDelaySeconds``, ``JitterStrategy`` ``NONE``/``FULL``: the caller supplies the
  jitter fraction) and ``Catch`` (``ErrorEquals``, ``ResultPath``, ``Next``). Retriers are matched in
  order and the first match decides (exhausted: on to the catchers). An error's name is the Lambda
  error payload's ``errorType`` and its cause the payload as JSON, as Step Functions reports them.
* ``Choice`` with ``Variable`` + ``StringEquals`` rules and ``Default``.
* ``Wait`` with ``Seconds`` or ``SecondsPath``.
* ``Succeed``; ``Fail`` with ``Error``/``ErrorPath`` and ``Cause``/``CausePath``.
* The machine's ``TimeoutSeconds`` (:meth:`Interpreter.timed_out`), StopExecution (:meth:`Interpreter.stop`).

Anything else (``Pass``, ``Map``, ``Parallel``, ``InputPath``, ``OutputPath``, ``ResultSelector``, task
timeouts, other comparison operators) raises :class:`Unsupported` when the definition is loaded, so a
definition that outgrows the model fails loudly instead of being run wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

RUNNING = "RUNNING"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
TIMED_OUT = "TIMED_OUT"
ABORTED = "ABORTED"

_STATE_KEYS: dict[str, set[str]] = {
    "Task": {"Type", "Resource", "Parameters", "ResultPath", "Retry", "Catch", "Next", "End", "Comment"},
    "Choice": {"Type", "Choices", "Default", "Comment"},
    "Wait": {"Type", "Seconds", "SecondsPath", "Next", "End", "Comment"},
    "Succeed": {"Type", "Comment"},
    "Fail": {"Type", "Error", "ErrorPath", "Cause", "CausePath", "Comment"},
}
_RETRY_KEYS = {"ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy"}
_CATCH_KEYS = {"ErrorEquals", "ResultPath", "Next"}
_PATH = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class Unsupported(ValueError):
    """The definition uses a feature this interpreter does not model."""


class PathError(LookupError):
    """A reference path names nothing in the state's input (Step Functions: ``States.Runtime``)."""


@dataclass(frozen=True)
class Invocation:
    """One Lambda invocation asked of the caller."""

    execution: Execution
    state: str
    resource: str
    payload: Any


Invoke = Callable[[Invocation], tuple[Any, dict[str, Any] | None]]
"""Runs an invocation: (result, None), or (None, the Lambda error payload with ``errorType``)."""


@dataclass
class Execution:
    arn: str
    name: str
    input: Any
    started_at: datetime
    state: str
    data: Any
    ready_at: datetime
    status: str = RUNNING
    output: Any = None
    error: str | None = None
    cause: str | None = None
    attempts: dict[int, int] = field(default_factory=dict)
    """Retries spent per retrier in the current state (Step Functions resets them on every transition)."""
    invocations: dict[str, int] = field(default_factory=dict)
    """Invocations per Task state so far (retries count): the ``invocation`` of a fault."""
    ended_at: datetime | None = None
    history: list[str] = field(default_factory=list)

    @property
    def running(self) -> bool:
        return self.status == RUNNING

    def ready(self, now: datetime) -> bool:
        return self.running and self.ready_at <= now


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def read_path(path: str, data: Any) -> Any:
    """The value at a ``$.a.b`` reference path."""
    if not _PATH.match(path):
        raise Unsupported(f"reference path {path!r}")
    value = data
    for part in path.split(".")[1:]:
        if not isinstance(value, dict) or part not in value:
            raise PathError(f"{path} names nothing in the state's input")
        value = value[part]
    return value


def write_path(path: str | None, data: Any, result: Any) -> Any:
    """``ResultPath``: the state's output when ``result`` is put at ``path`` in ``data``."""
    if path is None:
        return data
    if path == "$":
        return result
    if not _PATH.match(path):
        raise Unsupported(f"ResultPath {path!r}")
    output = json.loads(json.dumps(data)) if isinstance(data, dict) else {}
    target = output
    *parents, last = path.split(".")[1:]
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[last] = result
    return output


def _matches(error_equals: list[str], error: str) -> bool:
    if "States.ALL" in error_equals:
        return True
    if "States.TaskFailed" in error_equals and error != "States.Timeout":
        return True
    return error in error_equals


class Interpreter:
    """One state machine definition; executions are plain values the caller keeps."""

    def __init__(self, definition: dict[str, Any]) -> None:
        unknown = set(definition) - {"StartAt", "States", "TimeoutSeconds", "Comment"}
        if unknown:
            raise Unsupported(f"top-level fields {sorted(unknown)}")
        self.start_at: str = definition["StartAt"]
        self.states: dict[str, dict[str, Any]] = definition["States"]
        self.timeout = timedelta(seconds=definition["TimeoutSeconds"]) if "TimeoutSeconds" in definition else None
        for name, state in self.states.items():
            self._check(name, state)

    def _check(self, name: str, state: dict[str, Any]) -> None:
        kind = state.get("Type")
        if kind not in _STATE_KEYS:
            raise Unsupported(f"state {name!r} of type {kind!r}")
        extra = set(state) - _STATE_KEYS[kind]
        if extra:
            raise Unsupported(f"state {name!r}: {sorted(extra)}")
        for retrier in state.get("Retry", []):
            if set(retrier) - _RETRY_KEYS or retrier.get("JitterStrategy", "NONE") not in ("NONE", "FULL"):
                raise Unsupported(f"state {name!r}: retrier {retrier}")
        for catcher in state.get("Catch", []):
            if set(catcher) - _CATCH_KEYS:
                raise Unsupported(f"state {name!r}: catcher {catcher}")
        for rule in state.get("Choices", []):
            if set(rule) != {"Variable", "StringEquals", "Next"}:
                raise Unsupported(f"state {name!r}: choice rule {rule}")
        if kind == "Task" and not str(state.get("Resource", "")).startswith("arn:aws:lambda:"):
            raise Unsupported(f"state {name!r}: resource {state.get('Resource')!r} is not a Lambda function")
        if kind == "Wait" and ("Seconds" in state) == ("SecondsPath" in state):
            raise Unsupported(f"state {name!r}: a Wait needs exactly one of Seconds, SecondsPath")

    # Executions.
    def start(self, *, arn: str, name: str, input: Any, now: datetime) -> Execution:
        data = json.loads(json.dumps(input))
        return Execution(arn=arn, name=name, input=data, started_at=now, state=self.start_at, data=data,
                         ready_at=now, history=[f"started {_iso(now)}"])

    def stop(self, execution: Execution, now: datetime) -> None:
        """StopExecution: the execution ends ABORTED wherever it is."""
        self._end(execution, ABORTED, now, error=None, cause=None)

    def time_out(self, execution: Execution, now: datetime) -> None:
        """The machine's ``TimeoutSeconds`` struck: TIMED_OUT wherever it is."""
        self._end(execution, TIMED_OUT, now, error="States.Timeout", cause=None)

    def timed_out(self, execution: Execution, now: datetime) -> bool:
        """True when the machine's own timeout has passed for a running execution."""
        return execution.running and self.timeout is not None and now >= execution.started_at + self.timeout

    def _end(self, execution: Execution, status: str, now: datetime, *, error: str | None, cause: str | None,
             output: Any = None) -> None:
        execution.status, execution.error, execution.cause, execution.output = status, error, cause, output
        execution.ended_at = now
        execution.history.append(f"{status} {_iso(now)}" + (f" {error}" if error else ""))

    def _context(self, execution: Execution) -> dict[str, Any]:
        return {"Execution": {"Id": execution.arn, "Name": execution.name, "StartTime": _iso(execution.started_at),
                              "Input": execution.input},
                "State": {"Name": execution.state}}

    def _parameters(self, template: Any, data: Any, context: dict[str, Any]) -> Any:
        if isinstance(template, list):
            return [self._parameters(item, data, context) for item in template]
        if not isinstance(template, dict):
            return template
        built: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if value.startswith("$$"):
                    built[key[:-2]] = read_path(value[1:], context)
                else:
                    built[key[:-2]] = read_path(value, data)
            else:
                built[key] = self._parameters(value, data, context)
        return built

    def _transition(self, execution: Execution, state: dict[str, Any], data: Any, now: datetime) -> None:
        execution.attempts = {}
        if state.get("End"):
            self._end(execution, SUCCEEDED, now, error=None, cause=None, output=data)
            return
        execution.state, execution.data = state["Next"], data

    def _fail(self, execution: Execution, now: datetime, error: str, cause: str) -> None:
        self._end(execution, FAILED, now, error=error, cause=cause)

    def step(self, execution: Execution, *, now: datetime, invoke: Invoke, jitter: Callable[[], float]) -> None:
        """Run the execution's current state once (it must be running and ready at ``now``)."""
        if not execution.ready(now):
            raise RuntimeError(f"{execution.name} is not ready to step at {_iso(now)}")
        name, state, data = execution.state, self.states[execution.state], execution.data
        kind = state["Type"]
        execution.history.append(f"{_iso(now)} {name}")
        try:
            if kind == "Task":
                self._task(execution, name, state, data, now, invoke, jitter)
            elif kind == "Choice":
                target = state.get("Default")
                for rule in state["Choices"]:
                    if read_path(rule["Variable"], data) == rule["StringEquals"]:
                        target = rule["Next"]
                        break
                if target is None:
                    self._fail(execution, now, "States.NoChoiceMatched", f"no choice of {name} matched")
                    return
                execution.state, execution.attempts = target, {}
            elif kind == "Wait":
                seconds = state["Seconds"] if "Seconds" in state else read_path(state["SecondsPath"], data)
                if not isinstance(seconds, int | float) or seconds < 0:
                    self._fail(execution, now, "States.Runtime", f"{name}: {seconds!r} is not a number of seconds")
                    return
                execution.ready_at = now + timedelta(seconds=seconds)
                self._transition(execution, state, data, now)
            elif kind == "Succeed":
                self._end(execution, SUCCEEDED, now, error=None, cause=None, output=data)
            elif kind == "Fail":
                error = read_path(state["ErrorPath"], data) if "ErrorPath" in state else state.get("Error")
                cause = read_path(state["CausePath"], data) if "CausePath" in state else state.get("Cause")
                self._fail(execution, now, str(error), str(cause))
        except PathError as exc:
            self._fail(execution, now, "States.Runtime", str(exc))

    def _task(self, execution: Execution, name: str, state: dict[str, Any], data: Any, now: datetime,
              invoke: Invoke, jitter: Callable[[], float]) -> None:
        payload = self._parameters(state["Parameters"], data, self._context(execution)) if "Parameters" in state \
            else data
        execution.invocations[name] = execution.invocations.get(name, 0) + 1
        result, error = invoke(Invocation(execution, name, state["Resource"], json.loads(json.dumps(payload))))
        if not execution.running:
            return  # stopped or timed out while the function ran: its result goes nowhere
        if error is None:
            self._transition(execution, state, write_path(state.get("ResultPath", "$"), data, result), now)
            return
        error_name = str(error.get("errorType") or "Lambda.Unknown")
        cause = json.dumps({"errorMessage": error.get("errorMessage", ""), "errorType": error_name, "stackTrace": []})
        execution.history.append(f"  {error_name}: {str(error.get('errorMessage', ''))[:160]}")
        for index, retrier in enumerate(state.get("Retry", [])):
            if not _matches(retrier["ErrorEquals"], error_name):
                continue
            spent = execution.attempts.get(index, 0)
            if spent < retrier.get("MaxAttempts", 3):
                delay = retrier.get("IntervalSeconds", 1) * retrier.get("BackoffRate", 2.0) ** spent
                delay = min(delay, retrier.get("MaxDelaySeconds", delay))
                if retrier.get("JitterStrategy", "NONE") == "FULL":
                    delay *= jitter()
                execution.attempts[index] = spent + 1
                execution.ready_at = now + timedelta(seconds=delay)
                execution.history.append(f"  retry {spent + 1} in {delay:.0f} s")
                return
            break
        for catcher in state.get("Catch", []):
            if _matches(catcher["ErrorEquals"], error_name):
                caught = write_path(catcher.get("ResultPath", "$"), data, {"Error": error_name, "Cause": cause})
                execution.attempts = {}
                execution.state, execution.data = catcher["Next"], caught
                return
        self._fail(execution, now, error_name, cause)
