"""Time as AWS keeps it: waits that wait, on the runner's one clock, and runs that do not depend on the machine.

``report-exporter run`` uses the system clock. These tests drive the same code path with a clock that
records each sleep and moves its own time forward by it (not a ``VirtualClock``, so the runner takes
its real-time path): what would take minutes of real time is checked without waiting for it.
"""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from report_exporter.clock import SYSTEM, VirtualClock
from report_exporter.local import cli
from report_exporter.local.demo import demo_exports
from report_exporter.local.runner import LocalEnvironment
from report_exporter.models.exports import KoreExport, ParticleExport
from report_exporter.vendors.kore.simulator import KoreSimulator
from report_exporter.vendors.particle.simulator import ParticleSimulator
from tests.local.conftest import PERIOD, START

PARTICLE = ParticleExport(name="particle-demo", secret_name="report-exporter/particle-demo")
KORE = KoreExport(name="kore-demo", secret_name="report-exporter/kore-demo")


class RecordingClock:
    """Real-time semantics without the wait: ``sleep`` records and moves this clock's time forward."""

    def __init__(self, start: datetime) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self._now += timedelta(seconds=max(0.0, seconds))


@pytest.fixture
def timed(local_templates: dict[str, dict[str, Any]]) -> Any:
    clock = RecordingClock(START)
    lines: list[str] = []
    with LocalEnvironment(demo_exports(), templates=local_templates, clock=clock, progress=lines.append) as env:
        yield env, clock, lines


def gaps(times: list[datetime | None]) -> list[float]:
    stamps = [t for t in times if t is not None]
    return [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]


def test_run_on_the_system_clock_waits_between_polls_and_says_what_it_waits_for(timed: Any) -> None:
    env, clock, lines = timed
    # Given a Particle report that is ready on the third poll
    with ParticleSimulator(pending_polls=2, rows=10) as sim:
        result = env.run(PARTICLE, period=PERIOD, simulator=sim)
        create = sim.calls("POST", "usage_reports")[0].at
        polls = [c.at for c in sim.calls("GET", "/usage_reports/")]
    assert result.succeeded, result.cause
    # Then the polls came 15 s, 30 s and 60 s apart on the clock the run waited on
    assert gaps([create, *polls[:3]]) == [15, 30, 60]
    assert sum(clock.sleeps) >= 105
    # And it said what it was waiting for while it waited
    first = "waiting 15 s before poll 1 of report 1001 (deadline in 6 h 00 min)"
    assert any(line.endswith(first) for line in lines), lines
    assert any("waiting 30 s before poll 2" in line for line in lines)


def test_a_retry_after_of_two_seconds_is_honoured_before_the_next_request(timed: Any) -> None:
    env, clock, _ = timed
    # Given KORE answers the second page with 429 and Retry-After: 2
    with KoreSimulator(page_size=10, throttle_pages=frozenset({2}), retry_after=2) as sim:
        result = env.run(KORE, period=PERIOD, simulator=sim)
        pages = [c.at for c in sim.calls("GET", "UsageRecords")]
    assert result.succeeded, result.cause
    # Then the retry of page 2 came at least 2 s after the refusal
    assert 2.0 in clock.sleeps
    assert max(gaps(pages)) >= 2


def test_a_throttled_poll_waits_at_least_what_the_vendor_asks(timed: Any) -> None:
    env, _, _ = timed
    with ParticleSimulator(pending_polls=2, throttle_polls=frozenset({1}), retry_after=200, rows=5) as sim:
        result = env.run(PARTICLE, period=PERIOD, simulator=sim)
        polls = [c.at for c in sim.calls("GET", "/usage_reports/")]
    assert result.succeeded, result.cause
    assert gaps(polls)[0] >= 200


def test_the_cli_run_waits_in_real_time_unless_told_the_vendor_is_a_simulator(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: list[Any] = []

    class Probe:
        def __init__(self, exports: Any, **kwargs: Any) -> None:
            seen.append(kwargs["clock"])
            raise SystemExit(0)

    monkeypatch.setattr("report_exporter.local.runner.LocalEnvironment", Probe)
    config = tmp_path / "exports.toml"
    config.write_text('[[exports]]\nname = "particle-fleet"\nvendor = "particle"\nsecret_name = "s/p"\n')
    secrets = tmp_path / "s.secrets.json"
    secrets.write_text('{"s/p": {"access_token": "x"}}')
    args = ["run", "--config", str(config), "--export", "particle-fleet", "--period", PERIOD, "--secrets", str(secrets)]
    for extra in ([], ["--virtual-time"]):
        with pytest.raises(SystemExit):
            cli.main([*args, *extra])
    assert seen[0] is SYSTEM
    assert isinstance(seen[1], VirtualClock)


def test_the_deadline_is_exact_on_a_virtual_clock(local_env: LocalEnvironment) -> None:
    # Given a 5-minute deadline and a report that is never ready (was 299 >= 300 on a loaded machine)
    export = PARTICLE.model_copy(update={"report_deadline_minutes": 5})
    with ParticleSimulator(never_ready=True) as sim:
        result = local_env.run(export, period=PERIOD, simulator=sim)
    # Then it gave up after exactly 300 s of waiting, whatever the machine's load
    assert result.error == "ReportTimedOutError"
    assert sum(result.waits) == 300
    assert "after 7 polls over 5 min" in (result.cause or "")
