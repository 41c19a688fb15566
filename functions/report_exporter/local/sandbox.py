"""A Lambda invocation as AWS runs it, in process: its timeout, its memory size, its context, its death.

Each invocation gets a deadline on the runner's clock (its function's timeout from the template) and a
context whose remaining time is true on that clock. Every side effect passes a *checkpoint*: each
vendor request (the runner's HTTP transport), each AWS call (a botocore ``before-call`` hook) and
each sleep. A checkpoint past the deadline, or one a :class:`~report_exporter.local.faults.Crash`
names, kills the sandbox: :class:`SandboxDied` (a ``BaseException``, so no ``except Exception`` in
the handler swallows it) unwinds the handler, and every later checkpoint of that invocation raises
again, so clean-up code reaches nothing, as when AWS kills a process. Step Functions then sees what
AWS reports: ``Lambda.Unknown`` with "Task timed out after N seconds" or the runtime's exit.

On a virtual clock the handler runs in the calling thread and time passes only in its sleeps, which
stop at the deadline. On the system clock it runs in its own thread, which the caller gives up on
at the deadline (the thread dies at its next checkpoint).
"""

from __future__ import annotations

import contextvars
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from report_exporter import runtime
from report_exporter.clock import Clock, VirtualClock
from report_exporter.local.faults import FaultPlan

CURRENT: contextvars.ContextVar[Sandbox | None] = contextvars.ContextVar("sandbox", default=None)

# AWS calls that change something: the side effects a crash can strike before.
_WRITES = ("Put", "Create", "Upload", "Complete", "Copy", "Delete", "Abort", "Update", "TransactWrite", "Publish",
           "Send", "Start", "Stop")


class SandboxDied(BaseException):
    """The invocation ended: timed out or crashed. Not catchable by ``except Exception``."""


@dataclass
class Sandbox:
    function: str
    state: str
    execution: str
    invocation: int
    timeout: int
    memory: int
    clock: Clock
    faults: FaultPlan
    environment: dict[str, str] = field(default_factory=dict)
    """The function's own environment variables, as the template gives them."""
    deadline: datetime = field(init=False)
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    death: str | None = None
    _seen: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.deadline = self.clock.now() + timedelta(seconds=self.timeout)

    # What the handler sees.
    def context(self) -> LambdaContext:
        return LambdaContext(self)

    def remaining(self) -> float:
        return max(0.0, (self.deadline - self.clock.now()).total_seconds())

    # Dying.
    def timed_out_message(self) -> str:
        return f"RequestId: {self.request_id} Error: Task timed out after {self.timeout:.2f} seconds"

    def die(self, message: str) -> SandboxDied:
        if self.death is None:
            self.death = message
        return SandboxDied(self.death)

    def checkpoint(self, effect: str, *, counts: bool = True) -> None:
        """Called before every side effect: raises if the sandbox is dead, past its deadline, or crashes here."""
        if self.death is not None:
            raise SandboxDied(self.death)
        if self.clock.now() >= self.deadline:
            raise self.die(self.timed_out_message())
        if counts and self.faults.crash(execution=self.execution_name, state=self.state, invocation=self.invocation,
                                        effect=effect, seen=self._seen):
            raise self.die(f"RequestId: {self.request_id} Error: Runtime exited with error: signal: killed "
                           f"(injected crash before {effect})")

    @property
    def execution_name(self) -> str:
        return self.execution.rsplit(":", 1)[-1]

    # Running.
    def run(self, handler: Callable[[Any, Any], Any], event: Any) -> tuple[Any, dict[str, str] | None]:
        """Invoke ``handler``; returns (result, None) or (None, the Lambda error payload)."""
        if isinstance(self.clock, VirtualClock) or isinstance(getattr(self.clock, "base", None), VirtualClock):
            return self._call(handler, event)
        outcome: list[tuple[Any, dict[str, str] | None]] = []
        context = contextvars.copy_context()
        thread = threading.Thread(target=lambda: outcome.append(context.run(self._call, handler, event)),
                                  name=f"lambda-{self.function}", daemon=True)
        thread.start()
        thread.join(timeout=self.remaining())
        if outcome:
            return outcome[0]
        # AWS stops waiting at the deadline; the thread dies at its next checkpoint.
        return None, _error("Lambda.Unknown", self.die(self.timed_out_message()).args[0])

    def _call(self, handler: Callable[[Any, Any], Any], event: Any) -> tuple[Any, dict[str, str] | None]:
        token = CURRENT.set(self)
        try:
            with runtime.function_environment(self.environment):
                result = handler(event, self.context())
        except SandboxDied as died:
            return None, _error("Lambda.Unknown", str(died))
        except Exception as exc:  # what the Lambda runtime reports for an unhandled error
            if self.death is not None:
                return None, _error("Lambda.Unknown", self.death)
            return None, _error(type(exc).__name__, str(exc))
        finally:
            CURRENT.reset(token)
        if self.death is not None:  # died in a helper thread whose error the handler did not re-raise
            return None, _error("Lambda.Unknown", self.death)
        return result, None


def _error(error_type: str, message: str) -> dict[str, str]:
    return {"errorType": error_type, "errorMessage": message}


class LambdaContext:
    """The slice of the Lambda context our handlers (and Powertools) read; remaining time on the runner's clock."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.function_name = sandbox.function
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{sandbox.function}"
        self.memory_limit_in_mb = sandbox.memory
        self.aws_request_id = sandbox.request_id
        self.function_version = "$LATEST"
        self.log_group_name = f"/aws/lambda/{sandbox.function}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return int(self._sandbox.remaining() * 1000)


class SandboxClock:
    """The clock handlers see: the runner's clock, but a sleep inside a sandbox ends at its deadline (it dies)."""

    def __init__(self, base: Clock) -> None:
        self.base = base

    def now(self) -> datetime:
        return self.base.now()

    def sleep(self, seconds: float) -> None:
        sandbox = CURRENT.get()
        if sandbox is None:
            self.base.sleep(seconds)
            return
        sandbox.checkpoint("sleep", counts=False)
        left = sandbox.remaining()
        if seconds >= left:
            self.base.sleep(left)
            raise sandbox.die(sandbox.timed_out_message())
        self.base.sleep(seconds)


def aws_checkpoint(model: Any, **_: Any) -> None:
    """botocore ``before-call`` hook: every AWS call of a handler passes the sandbox's checkpoint."""
    sandbox = CURRENT.get()
    if sandbox is None:
        return
    operation = str(model.name)
    effect = f"{model.service_model.endpoint_prefix}:{operation}"
    sandbox.checkpoint(effect, counts=operation.startswith(_WRITES))
