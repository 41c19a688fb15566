"""What waiting for a report costs: polls, CheckReport invocations and Step Functions history events.

Computed, not measured: the synthesized state machine definition gives the states one poll passes through
(ReportReady? -> WaitForReport -> CheckReport), each state type's history events are AWS's documented
ones, and the waits come from running the real RequestReport and CheckReport logic with an adapter's
cadence on a virtual clock. ``make bench`` prints these figures; the tests assert them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from report_exporter.adapters.base import PollResult, RawSink, RequestResult
from report_exporter.errors import ExporterError, ReportTimedOutError, VendorThrottledError
from report_exporter.logic.check_report import check_report
from report_exporter.logic.request_report import request_report
from report_exporter.models.exports import ExportSpec
from report_exporter.models.exports.base import month_window
from report_exporter.models.payloads import CheckInput, JobStatus, RequestInput, RunPlan
from report_exporter.ports import Claim, Ledger
from report_exporter.vendors.base import Cadence

# History events a state adds when it runs once and succeeds (Step Functions' history event types):
# a Lambda task is TaskStateEntered, LambdaFunctionScheduled, LambdaFunctionStarted,
# LambdaFunctionSucceeded, TaskStateExited (a service integration has TaskScheduled/Started/Succeeded
# instead: also five); every other state is <Type>StateEntered and <Type>StateExited.
EVENTS_PER_STATE: Mapping[str, int] = {"Task": 5, "Choice": 2, "Wait": 2, "Pass": 2, "Succeed": 2, "Fail": 1}
EXECUTION_EVENTS = 2
"""ExecutionStarted and ExecutionSucceeded (or ExecutionFailed)."""

START = datetime(2026, 11, 3, 6, 0, tzinfo=UTC)


@dataclass(frozen=True)
class PollLoop:
    """The states of one successful run of the definition, split around the poll loop."""

    before: tuple[str, ...]
    """From StartAt to the Choice that asks whether the report is ready (inclusive)."""
    poll: tuple[str, ...]
    """One poll: from the Choice's default branch back to the Choice (inclusive)."""
    after: tuple[str, ...]
    """From the Choice's ready branch to the end state."""
    types: Mapping[str, str]

    def events(self, states: tuple[str, ...]) -> int:
        return sum(EVENTS_PER_STATE[self.types[name]] for name in states)

    @property
    def events_per_poll(self) -> int:
        return self.events(self.poll)

    def history_events(self, polls: int) -> int:
        """Events of an execution that polled ``polls`` times, then downloaded and published."""
        return EXECUTION_EVENTS + self.events(self.before) + polls * self.events_per_poll + self.events(self.after)


def state_machine_definition(templates: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The one state machine definition in synthesized templates, with every token in it replaced by ``REF``."""
    (body,) = [
        resource["Properties"]["DefinitionString"]
        for template in templates.values()
        for resource in (template.get("Resources") or {}).values()
        if resource["Type"] == "AWS::StepFunctions::StateMachine"
    ]
    if isinstance(body, dict):  # Fn::Join when tokens (function ARNs) are inside
        body = "".join(part if isinstance(part, str) else "REF" for part in body["Fn::Join"][1])
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def poll_loop(definition: Mapping[str, Any]) -> PollLoop:
    """Find the poll loop in an ASL definition: the first Choice whose default branch comes back to it."""
    states: Mapping[str, Any] = definition["States"]

    def follow(name: str, stop: str | None) -> list[str]:
        path: list[str] = []
        while name and name != stop and name not in path:
            path.append(name)
            state = states[name]
            if state["Type"] == "Choice":
                break
            name = state.get("Next", "")
        return path

    before = follow(definition["StartAt"], None)
    choice = before[-1]
    if states[choice]["Type"] != "Choice":
        raise ValueError(f"no Choice on the path from {definition['StartAt']}")
    loop = [*follow(states[choice]["Default"], choice), choice]
    if states[loop[-2]].get("Next") != choice:
        raise ValueError(f"the default branch of {choice} does not come back to it")
    after = follow(states[choice]["Choices"][0]["Next"], None)
    return PollLoop(tuple(before), tuple(loop), tuple(after), {name: s["Type"] for name, s in states.items()})


@dataclass
class _Vendor:
    """A report that becomes ready ``ready_after`` seconds after it was requested (never, if None)."""

    cadence: Cadence
    ready_after: float | None
    throttle_polls: frozenset[int]
    clock: list[datetime]
    retry_after: float | None = None
    timeout_error: type[ExporterError] = ReportTimedOutError
    polls: int = 0

    def request(self, plan: RunPlan) -> RequestResult:
        return RequestResult(JobStatus.PENDING, "r-1")

    def poll(self, plan: RunPlan, report_id: str) -> PollResult:
        self.polls += 1
        if self.polls in self.throttle_polls:
            raise VendorThrottledError("429", retry_after=self.retry_after)
        age = (self.clock[0] - START).total_seconds()
        ready = self.ready_after is not None and age >= self.ready_after
        return PollResult(JobStatus.READY if ready else JobStatus.PENDING)

    def download(self, plan: RunPlan, report_id: str | None, sink: RawSink) -> None:
        raise AssertionError("not called")


class _Ledger:
    """The ledger calls RequestReport and CheckReport make, answered as for a fresh run."""

    def claim(self, plan: RunPlan, *, now: datetime) -> Claim:
        return Claim(adopt=False)

    def acquire_slot(self, plan: RunPlan, cap: int, *, now: datetime) -> None:
        return None

    def release_slot(self, account: str, execution: str) -> None:
        return None

    def requested(self, plan: RunPlan, *, job: str, report_id: str | None, ready: bool, now: datetime) -> None:
        return None

    def polled(self, plan: RunPlan, *, job: str, polls: int, ready: bool, now: datetime,
               link_expires_at: datetime | None = None) -> None:
        return None


@dataclass(frozen=True)
class Wait:
    """How one pending report went: the waits planned, the polls made, and when it was found."""

    waits: list[int]
    polls: int
    found_at: float | None
    """Seconds after the request at which a poll saw the report ready (None: it timed out)."""
    timed_out: bool
    poll_times: list[float] = field(default_factory=list)

    def found_late(self, ready_after: float) -> float:
        assert self.found_at is not None
        return self.found_at - ready_after


def wait_for(export: ExportSpec, cadence: Cadence, *, ready_after: float | None, deadline_minutes: int,
             throttle_polls: frozenset[int] = frozenset(), retry_after: float | None = None) -> Wait:
    """Run RequestReport, then CheckReport after each planned wait, until the report is ready or timed out.

    Lambda run time is not counted: each poll happens exactly when its wait ends.
    """
    plan = RunPlan(export=export, window=month_window("2026-10", export.timezone),
                   execution_id=f"arn:aws:states:us-east-1:123456789012:execution:m:{export.name}-2026-10",
                   started_at=START, deadline=START + timedelta(minutes=deadline_minutes))
    clock = [START]
    vendor = _Vendor(cadence, ready_after, throttle_polls, clock, retry_after)
    ledger = cast(Ledger, _Ledger())
    job = request_report(RequestInput(plan=plan), adapter=vendor, ledger=ledger, now=START)
    waits, times = [job.wait_seconds], []
    while job.status is JobStatus.PENDING:
        clock[0] += timedelta(seconds=job.wait_seconds)
        times.append((clock[0] - START).total_seconds())
        try:
            job = check_report(CheckInput(plan=plan, job=job), adapter=vendor, ledger=ledger, now=clock[0])
        except ExporterError:
            return Wait(waits, vendor.polls, None, True, times)
        waits.append(job.wait_seconds)
    return Wait(waits, vendor.polls, times[-1], False, times)
